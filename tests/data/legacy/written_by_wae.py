"""Run with the code of otgen's first model format (issue 27, before the option specs of issue 28: e.g.
`git worktree add ../old <that commit>`, then this file with that tree's src/ on PYTHONPATH).

Writes WAE model files of format "otgen-model-1" (flat constructor arguments) and what each model
returns for fixed inputs and generators, so that tests/test_wae_options.py can check that
``WAEOptions.from_legacy`` and today's WAE reproduce them bitwise."""
from pathlib import Path

import torch

import otgen
from otgen.distributions.images import digits

torch.set_num_threads(1)
out = Path(__file__).parent
g = lambda s: torch.Generator().manual_seed(s)
vectors = torch.randn(64, 6, generator=g(7))
images = digits(size=8, split="train").images[:64].float().clone()
models = {
    "wae_gan": (otgen.WAE(data_shape=(6,), latent_dim=2, penalty="gan", prior_trick=True, encoder_type="gaussian",
                          hidden=[16], adversary_hidden=[16], lr_adv=1e-3, betas=[0.6, 0.99], grad_clip=1.0,
                          lr_schedule="cosine", input_noise=0.05, pretrain_steps=3, pretrain_batch=32, seed=1),
                vectors),
    "wae_rbf": (otgen.WAE(data_shape=(6,), latent_dim=3, kernel="rbf", rbf_bandwidth=1.5, hidden=[16, 16],
                          lr_schedule="steps", lam=5.0, seed=2), vectors),
    "wae_image": (otgen.WAE(data_shape=(1, 8, 8), latent_dim=4, width=8, kernel_scales=[0.5, 1.0, 2.0],
                            input_noise=0.05, encoder_type="gaussian", seed=3), images),
}
expected = {"vectors": vectors[:32].clone(), "images": images[:32].clone()}  # the steps' batches
for name, (m, data) in models.items():
    m.fit(data, n_iters=4, batch_size=16, progress=False)
    m.save(out / f"{name}.pt")
    z = torch.randn(5, m.latent_dim, generator=g(11))
    x = data[:5]
    e = {"decode": m.decode(z), "sample": m.sample(5, generator=g(3)), "reconstruct": m.reconstruct(x),
         "encode": m.encode(x, sample=True, generator=g(4)), "z": z, "x": x.clone()}
    e["losses"] = [m.train_step(data[16 * i:16 * (i + 1)]) for i in range(2)]  # two more steps after loading
    e["after"] = {k: v for k, v in m.state_dict().items() if k in ("encoder", "decoder", "adversary")}
    expected[name] = e
torch.save(expected, out / "wae_expected.pt")
print({k: sorted(v) if isinstance(v, dict) else tuple(v.shape) for k, v in expected.items()})
