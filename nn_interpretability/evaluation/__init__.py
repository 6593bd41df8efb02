"""Evaluating attribution methods: agreement, faithfulness, sanity checks and the textbook's axioms.

- :mod:`.agreement`: Spearman rank correlation between methods, image by image (seed 000).
- :mod:`.faithfulness`: deletion and insertion curves (Petsiuk et al. 2018).
- :mod:`.sanity`: cascading model parameter randomization with Spearman and SSIM (Adebayo et al. 2018).
- :mod:`.perturbation`: pixel flipping, region perturbation / AOPC (Samek et al. 2017), faithfulness
  correlation (Bhatt et al. 2020), ROAD (Rong et al. 2022), infidelity (Yeh et al. 2019).
- :mod:`.robustness`: max-sensitivity (Yeh et al. 2019), local Lipschitz estimate (Alvarez-Melis &
  Jaakkola 2018).
- :mod:`.complexity`: sparseness (Gini, Chalasani et al. 2020), complexity (entropy, Bhatt et al. 2020).
- :mod:`.randomisation`: smooth and efficient MPRT (Hedström et al. 2023), random logit (Sixt et al. 2020).
- :mod:`.metrics`: ``METRICS``, the table of these per-sample metrics (function, better, how called).
- :mod:`.localisation`: pointing game, relevance mass and rank accuracy (Zhang et al. 2018; Arras et al. 2022).
- :mod:`.statistics`: per-sample scores summarised by a bootstrap interval; paired tests between methods.
- :mod:`.reliability`: does a metric's ranking survive minor perturbations and react to disruptive ones
  (MetaQuantus, Hedström et al. 2023)?
- :mod:`.leaderboard`: every registered method × metric with intervals (the canvas localisation benchmark).
- :mod:`.properties`: completeness, sensitivity, implementation invariance and continuity as a table
  (textbook "Post Training Analysis", Sundararajan et al. 2017).
"""
from .agreement import AgreementResult, average_ranks, compute_attributions, method_agreement, spearman_per_sample
from .complexity import complexity, sparseness
from .faithfulness import FaithfulnessCurve, deletion_insertion, perturbation_ranks
from .metrics import METRICS, ExplainerScore, Metric, score_function
from .perturbation import (
    aopc,
    faithfulness_correlation,
    infidelity,
    noisy_linear_imputation,
    pixel_flipping,
    region_perturbation,
    road,
)
from .leaderboard import (
    SKIPPED, BaselineMap, BoundMethod, Leaderboard, baseline_map, configured_method, leaderboard, localisation_metrics, method_settings,
)
from .localisation import pointing_game, relevance_mass_accuracy, relevance_rank_accuracy
from .reliability import ReliabilityResult, metric_reliability
from .statistics import PairedTest, Summary, paired_test, summarize
from .properties import (
    PROPERTIES,
    AxiomsTable,
    PropertyResult,
    axioms_table,
    completeness,
    conservation,
    continuity,
    default_methods,
    dummy_feature_network,
    implementation_invariance,
    invariance_pair,
    kink_network,
    sensitivity_a,
    sensitivity_b,
)
from .randomisation import efficient_mprt, histogram_entropy, random_logit, randomized_copy, smooth_mprt
from .robustness import local_lipschitz_estimate, max_sensitivity
from .sanity import (
    SanityResult,
    cascading_randomization,
    parameter_layers,
    randomize_layer,
    structural_similarity,
)

__all__ = [
    "METRICS",
    "ExplainerScore",
    "Metric",
    "score_function",
    "aopc",
    "complexity",
    "efficient_mprt",
    "faithfulness_correlation",
    "histogram_entropy",
    "infidelity",
    "local_lipschitz_estimate",
    "max_sensitivity",
    "noisy_linear_imputation",
    "pixel_flipping",
    "random_logit",
    "randomized_copy",
    "region_perturbation",
    "road",
    "smooth_mprt",
    "sparseness",
    "PROPERTIES",
    "SKIPPED",
    "BaselineMap",
    "BoundMethod",
    "Leaderboard",
    "PairedTest",
    "ReliabilityResult",
    "Summary",
    "baseline_map",
    "configured_method",
    "leaderboard",
    "localisation_metrics",
    "method_settings",
    "metric_reliability",
    "paired_test",
    "pointing_game",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "summarize",
    "AgreementResult",
    "AxiomsTable",
    "FaithfulnessCurve",
    "PropertyResult",
    "SanityResult",
    "average_ranks",
    "axioms_table",
    "cascading_randomization",
    "completeness",
    "compute_attributions",
    "conservation",
    "continuity",
    "default_methods",
    "deletion_insertion",
    "dummy_feature_network",
    "implementation_invariance",
    "invariance_pair",
    "kink_network",
    "method_agreement",
    "parameter_layers",
    "perturbation_ranks",
    "randomize_layer",
    "sensitivity_a",
    "sensitivity_b",
    "spearman_per_sample",
    "structural_similarity",
]
