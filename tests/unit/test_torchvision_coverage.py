"""Coverage across torchvision: LRP on one random-weight model per classification family, float64.

LRP-0 without biases and with CP-LRP's attention conserves relevance exactly, so on the bias-free
models the input relevance must sum to the logit (≤ 1e-6 relative); a family with an operation LRP has
no rule for must raise an error naming it. The default composite (EpsilonPlusFlat, AttnLRP) must run.
"""
import pytest
import torch

import nn_interpretability as nni
from nn_interpretability.attribution.lrp import Composite, Epsilon
from nn_interpretability.models.torchvision_models import FAMILIES, family_model

#: Families LRP refuses, and the operation its error must name.
LRP_REFUSES = {"swin_v2": "no rule for torch.nn.functional.normalize"}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_lrp_conserves_relevance_or_names_the_missing_operation(family):
    model, x = family_model(family, bias_free=True)
    lrp = nni.LRP(model, composite=Composite(default=Epsilon(0.0, bias=False), stabilizer=0.0, attention="conservative"))
    if family in LRP_REFUSES:
        with pytest.raises(NotImplementedError, match=LRP_REFUSES[family]):
            lrp.attribute(x)
        return
    with torch.no_grad():
        logit = model(x).max()
    _, delta = lrp.attribute(x, return_convergence_delta=True)
    assert float(delta.abs().max() / logit.abs()) < 1e-6
    relevance = nni.LRP(model).attribute(x)
    assert torch.isfinite(relevance).all() and relevance.abs().sum() > 0


def test_coverage_is_at_least_nine_tenths_of_the_families():
    assert 1 - len(LRP_REFUSES) / len(FAMILIES) >= 0.9
