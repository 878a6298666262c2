"""Notebook 6 (the sandbox), executed with FAST=True: its recorded figures against exact references."""
import pytest

pytestmark = pytest.mark.notebook


def test_sandbox_notebook(fast_notebook):
    fig, _ = fast_notebook("06_sandbox")
    # The oracle start is p_T itself: KL(p_T ‖ q) = 0 exactly; the other starts are Monte Carlo estimates with an SE.
    assert fig["short_kl_start_oracle"] == 0.0 and fig["short_kl_start_exact_oracle"] is True
    for k in ("prior", "gaussian", "gmm"):
        assert fig[f"short_kl_start_exact_{k}"] is False and fig[f"short_kl_start_se_{k}"] > 0
    # A short VP horizon: the fitted GMM start is closer to p_T than the prior (beyond 4 standard errors).
    gap = fig["short_kl_start_prior"] - fig["short_kl_start_gmm"]
    assert gap > 4 * (fig["short_kl_start_se_prior"] ** 2 + fig["short_kl_start_se_gmm"] ** 2) ** 0.5
    # Heun with the exact score: the samples' KL to the data (a k-NN estimate) is within 4 SE of 0; 20 Heun steps
    # cost 40 score evaluations.
    assert abs(fig["default_kl_samples"]) < 4 * fig["default_kl_samples_se"]
    assert fig["default_nfe"] == 40
    # A constant score error ε e moves the samples along e (same seed, so the difference is the shift).
    assert fig["eps_mean_along_e"] - fig["eps0_mean_along_e"] > 4 * fig["eps_mean_along_e_se"]
    # The dashboard: three default beads, 8 Euler–Maruyama steps (8 evaluations); its printed code and its JSON
    # file give back its numbers and its state.
    assert fig["dashboard_n_beads"] == 3 and fig["dashboard_nfe"] == 8
    assert fig["dashboard_code_matches"] is True and fig["dashboard_loaded_matches"] is True
