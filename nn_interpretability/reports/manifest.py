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
    """

    id: str
    source: str
    number: int | None
    caption: str
    notebook: str

    @property
    def file(self) -> str:
        """The PNG file name under ``<reports>/figures/``."""
        return f"{self.id}.png"

    @property
    def label(self) -> str:
        """Display label: "Fig. 6" for numbered figures, the id otherwise."""
        return f"Fig. {self.number}" if self.number is not None else self.id


def _report(number: int, id: str, notebook: str, caption: str) -> Figure:
    return Figure(id, "002", number, caption, notebook)


MANIFEST: tuple[Figure, ...] = (
    _report(1, "fig01_am_general", "01_activation_maximization",
            "General activation maximization; left: started from a random training image of the class, "
            "right: from the class mean."),
    _report(2, "fig02_am_noise", "01_activation_maximization",
            "Activation maximization from noise; left: class-mean regularization, right: L2 regularization."),
    _report(3, "fig03_am_code_space", "01_activation_maximization",
            "Activation maximization in code space; left: a VAE decoder (the simple generator), right: DCGAN."),
    _report(4, "fig04_deepdream_layers", "02_deep_dream",
            "DeepDream with a whole layer as objective, for two layers."),
    _report(5, "fig05_deepdream_channels", "02_deep_dream",
            "DeepDream with a single channel as objective, for two channels of one layer."),
    _report(6, "fig06_backprop", "06_backpropagation",
            "Vanilla backpropagation, guided backpropagation and integrated gradients."),
    _report(7, "fig07_smoothgrad", "06_backpropagation",
            "SmoothGrad, guided backpropagation + SmoothGrad and integrated gradients + SmoothGrad."),
    _report(8, "fig08_deconvolution", "04_deconvolution",
            "Deconvolution: full input reconstruction per class and partial reconstruction per filter "
            "of the first convolutional layer."),
    _report(9, "fig09_occlusion", "05_occlusion_sensitivity",
            "Occlusion sensitivity, with the class-1 probability above each occluded image."),
    _report(10, "fig10_occlusion_deeplift", "05_occlusion_sensitivity",
            "Occlusion sensitivity combined with DeepLIFT."),
    _report(11, "fig11_taylor", "07_taylor_decomposition",
            "Simple Taylor decomposition and deep Taylor decomposition."),
    _report(12, "fig12_lrp_rules", "08_lrp",
            "Layer-wise relevance propagation with the LRP-0, LRP-epsilon and LRP-gamma rules."),
    _report(13, "fig13_lrp_alphabeta_composite", "08_lrp",
            "LRP-alpha2-beta1 and composite LRP."),
    _report(14, "fig14_revealcancel", "09_deeplift",
            "The DeepLIFT RevealCancel rule."),
    _report(15, "fig15_deeplift", "09_deeplift",
            "DeepLIFT with the Rescale, Linear and RevealCancel rules."),
    _report(16, "fig16_cam", "10_cam_gradcam",
            "Class activation maps with a high (3x3 feature maps) and a low (6x6 feature maps) "
            "input-to-feature-map ratio."),
    _report(17, "fig17_gradcam_layers", "10_cam_gradcam",
            "Grad-CAM at the first, second and third convolutional layer."),
    _report(18, "fig18_mc_dropout", "11_mc_dropout",
            "MC dropout: class logits and softmax scores for a rotated digit 1."),
    _report(19, "fig19_mc_dropout_lrp", "11_mc_dropout",
            "MC dropout combined with LRP: approach 1 and Algorithm 1."),
    _report(20, "fig20_evidential", "12_evidential",
            "Evidential deep learning on a continuously rotated digit 1."),
    _report(21, "fig21_evidential_lrp_dtd", "12_evidential",
            "Composite LRP and deep Taylor decomposition on the basic versus the evidential model."),
    _report(22, "fig22_uncertainty_deeplift", "13_uncertainty_deeplift",
            "DeepLIFT on the plain CNN, and single-pass and multi-pass DeepLIFT on the dropout CNN."),
    _report(23, "fig23_noisy_deeplift", "13_uncertainty_deeplift",
            "DeepLIFT over 2,000 noisy copies of an input, averaged per predicted class."),
    _report(24, "fig24_temperature_scaling", "14_temperature_scaling",
            "Input, DeepLIFT of the ImageNet model and DeepLIFT of its temperature-scaled version."),
    Figure("s000_fig1_method_maps", "000", 1,
           "Integrated gradients, LRP, DeepLIFT and guided backpropagation on a test 0 and a test 1.",
           "17_method_agreement"),
    Figure("s000_fig2_method_agreement", "000", 2,
           "Spearman rank correlation between the four methods' maps, mean ± std over test images.",
           "17_method_agreement"),
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
           "IG, DeepLIFT, LRP and Grad-CAM of the predicted rotation angle of a digit rotated by -40, 0 and +40 degrees.",
           "19_segmentation_and_regression"),
    Figure("every_class_maps", "extra", None,
           "DeepLIFT maps of all ten classes of the MNIST CNN in one call (target=\"all\").",
           "19_segmentation_and_regression"),
    Figure("vit_method_maps", "extra", None,
           "AttnLRP, CP-LRP (default composite and LRP-epsilon everywhere), DeepLIFT, IG, token Grad-CAM and "
           "attention rollout of the MNIST vision transformer, one test digit per class.",
           "20_vision_transformer"),
    Figure("vit_faithfulness_curves", "extra", None,
           "Deletion and insertion curves of every method on the MNIST vision transformer, with a random map for reference.",
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
           "Deletion and insertion curves of the Grad-CAM family and FullGrad on the MNIST CNN, with a random map for reference.",
           "21_cam_family"),
    Figure("cam_family_rank_correlation", "extra", None,
           "Mean Spearman correlation between the maps of the Grad-CAM family and FullGrad over 100 MNIST test digits.",
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
           "Neuron conductance maps of the three units that conduct most of the 7 logit, on test 7s and other digits.",
           "23_conductance_and_tcav"),
    Figure("tcav_concept_examples", "extra", None,
           "Examples of the offline MNIST concepts of TCAV: closed loop, horizontal bar, thick stroke, and a random set.",
           "23_conductance_and_tcav"),
    Figure("tcav_concept_scores", "extra", None,
           "TCAV scores of three concepts for every class at two layers of the MNIST CNN, against the random-set spread.",
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
           "Every registered attribution method on MNIST digits: localisation on the digit's strokes and "
           "deletion / insertion AUC, with 95 % bootstrap intervals.",
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
