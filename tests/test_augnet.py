"""AugNet learns from its reward: rigged rewards, a constant reward, and a label-destroying op on MNIST."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from adaptaug.errors import ConfigError
from adaptaug.ops.space import OpSpace, OpSpec, OP_REGISTRY, register_op
from adaptaug.policies.augnet import GATED_PROBE_CHUNK, GATED_PROBE_EVERY, AugNet, AugNetConfig, AugNetPolicy
from adaptaug.rewards import RoundData, get_reward

import pytest

SPACE = OpSpace.of(["Identity", "Rotate", "TranslateX", "Brightness", "Contrast", "Cutout"])


class PaysFor:
    """A rigged per-sample reward: 1 for samples that got ``op`` (in any slot), 0 otherwise."""
    name, per_sample, needs_gradients, needs_clean_loss = "rigged", True, False, False

    def __init__(self, op: int | None):
        self.op = op

    def __call__(self, data: RoundData) -> list[torch.Tensor]:
        if self.op is None:
            return [torch.ones(s.op_idx.shape[0]) for s in data.steps]
        return [(s.op_idx == self.op).any(1).float() for s in data.steps]


def _digits_batches():
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    images = torch.tensor(x, dtype=torch.float32).view(-1, 1, 8, 8) / 16
    return images, torch.tensor(y)


def _run_policy(reward, rounds: int = 60, learn: bool = True, seed: int = 0, probe_every: int = 1,
                on_policy=None, total_rounds: int | None = None, probe_chunk: int | None = None,
                update_every: int = 4, **fields):
    """AugNet on digits batches for ``rounds`` x 4 training steps (rounds of the default length)."""
    torch.manual_seed(seed)
    images, labels = _digits_batches()
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU())
    head = nn.Linear(32, 10)
    net = nn.Sequential(model, head)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    config = AugNetConfig(update_every=update_every, learn=learn, probe_every=probe_every, probe_chunk=probe_chunk,
                          **fields)
    policy = AugNetPolicy(SPACE, 10, total_steps=(total_rounds or rounds) * 4, config=config,
                          generator=torch.Generator().manual_seed(seed))
    policy.reward = reward
    loss_fn = lambda logits, y: F.cross_entropy(logits, y, reduction="none")  # noqa: E731
    policy.attach(net, loss_fn, images[-200:], labels[-200:], head=head)
    if on_policy is not None:
        on_policy(policy)
    g = torch.Generator().manual_seed(seed)
    for _ in range(rounds * 4):
        idx = torch.randint(0, 1500, (64,), generator=g)
        x = policy(images[idx])
        logits = net(x)
        loss = loss_fn(logits, labels[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        policy.observe(logits, labels[idx])
    return policy


def test_rigged_reward_raises_that_ops_probability():
    target = SPACE.index("Brightness")
    policy = _run_policy(PaysFor(target))
    probs = policy.op_probabilities
    assert probs["Brightness"] > 0.5, probs  # uniform is 1/6 ~ 0.17
    assert len(policy.trace) == 60
    # the trace shows the rise, not only the end point
    assert policy.trace[-1]["p_Brightness"] > policy.trace[0]["p_Brightness"]


class PaysForApplying:
    """A rigged per-sample reward for the gate: 1 for samples that got AugNet's op (or, inverted, that did not)."""
    name, per_sample, needs_gradients, needs_clean_loss = "rigged-gate", True, False, False

    def __init__(self, applying: bool):
        self.applying = applying

    def __call__(self, data: RoundData) -> list[torch.Tensor]:
        return [(s.applied == self.applying).float() for s in data.steps]


@pytest.mark.parametrize("free_gate", [False, True])
@pytest.mark.parametrize("applying", [True, False])
def test_gate_learns_whether_to_augment_and_leaves_the_ops_alone(applying, free_gate):
    # no entropy bonus: its gradient at the uniform distribution is float noise (2e-9 per logit, not equal across
    # SIMD lanes), which Adam's scale invariance turns into real steps once nothing else moves the op head; on an
    # AMD EPYC that noise moved the ops to [0.215 x 4, 0.070 x 2]. Without it the op head must not move at all.
    # a free gate is one weight, which an Adam step moves by about lr: 0.5 -> 0.88 takes some 250 rounds
    rounds = 300 if free_gate else 60
    policy = _run_policy(PaysForApplying(applying), rounds=rounds, gate=True, entropy_coef=0.0, free_gate=free_gate)
    share = policy.augmented_share
    assert (share > 0.8) if applying else (share < 0.2), share  # starts at 0.5
    assert [row["augmented_share"] for row in policy.trace][-1] == pytest.approx(share)
    # the trace logs the evidence: the reward of the augmented samples minus the others' (here exactly +1 or -1)
    gaps = [row["gate_reward_gap"] for row in policy.trace if "gate_reward_gap" in row]
    assert len(gaps) > 50 and set(gaps) == {1.0 if applying else -1.0}, set(gaps)
    # among the augmented samples the reward is constant: no op is credited with what the gate earned
    probs = torch.tensor(list(policy.op_probabilities.values()))
    assert (probs - 1 / len(SPACE)).abs().max() < 1e-6, probs
    restored = AugNetPolicy(SPACE, 10, total_steps=rounds * 4, config=policy.config)
    restored.load_state_dict(policy.state_dict())
    assert restored.augmented_share == pytest.approx(share)


def test_free_gate_is_one_logit_that_the_op_heads_cannot_move():
    net = AugNet(num_features=8, num_ops=6, num_bins=10, gate=True, free_gate=True)
    assert net.gate_head is None
    with torch.no_grad():
        net.gate_logit.fill_(1.5)
    states = torch.randn(5, 8)
    op_logits, mag_logits, gate_logit = net.heads(states)
    assert torch.equal(gate_logit, torch.full((5,), 1.5))  # the same for every state
    with torch.no_grad():  # as AugNet reads its distributions: nothing that keeps a graph
        assert not net.heads(states)[2].requires_grad
    # an op-and-magnitude loss reaches no gate weight, and a gate loss no weight of the MLP or its op heads
    (op_logits.square().sum() + mag_logits.square().sum()).backward()
    assert net.gate_logit.grad is None
    net.zero_grad(set_to_none=True)
    net.heads(states)[2].sum().backward()
    assert net.gate_logit.grad == pytest.approx(5.0)
    assert all(p.grad is None for name, p in net.named_parameters() if name != "gate_logit")
    # the shared gate, by contrast, is a head on the MLP's features
    shared = AugNet(num_features=8, num_ops=6, num_bins=10, gate=True)
    assert shared.gate_logit is None and shared.gate_head is not None
    # the policy builds it over a base augmentation and says so in its repr (config.json's policy_repr)
    from adaptaug.policies.fixed import StandardAugment
    policy = AugNetPolicy(SPACE, 10, total_steps=40, config=AugNetConfig(free_gate=True),
                          base=StandardAugment(generator=torch.Generator().manual_seed(0)))
    assert policy.net.gate_logit is not None and policy.net.gate_head is None
    assert "gate=True, free_gate=True" in repr(policy)


@pytest.mark.parametrize("fields", [{"gate": False}, {"warmup": 0.5}])
def test_free_gate_without_the_gate_is_a_clear_error(fields):
    with pytest.raises(ConfigError, match="free_gate"):
        AugNetConfig(free_gate=True, **fields).resolved(stacked=True)
    with pytest.raises(ConfigError, match="free_gate"):
        AugNetConfig(free_gate=True).resolved(stacked=False)  # text: no base augmentation, the gate is off


def test_gate_under_a_constant_reward_stays_near_half():
    policy = _run_policy(PaysFor(None), rounds=60, gate=True)
    assert abs(policy.augmented_share - 0.5) < 0.05


@pytest.mark.parametrize("fields,message", [({"warmup": 0.5}, "warmup"), ({"per_sample": True}, "per_sample"),
                                            ({"reward": "val-drop"}, "val-drop")])
def test_gate_refuses_what_it_does_not_combine_with(fields, message):
    with pytest.raises(ConfigError, match=message):
        AugNetConfig(gate=True, **fields)


@pytest.mark.parametrize("fields,stacked,gated", [
    ({}, True, True), ({}, False, False),  # by default: on over a base augmentation only
    ({"gate": False}, True, False), ({"gate": True}, False, True),  # as given
    ({"warmup": 0.5}, True, False), ({"per_sample": True}, True, False), ({"reward": "val-drop"}, True, False),
])
def test_gate_is_on_by_default_where_augnet_stacks_on_a_base(fields, stacked, gated):
    from adaptaug.policies.fixed import StandardAugment
    base = StandardAugment(generator=torch.Generator().manual_seed(0)) if stacked else None
    policy = AugNetPolicy(SPACE, 10, total_steps=40, config=AugNetConfig(**fields), base=base)
    assert policy.config.gate is gated and (policy.net.gate_head is not None) is gated
    assert ("gate=True" in repr(policy)) is gated  # config.json's policy_repr says so too
    assert AugNetConfig(**fields).gate == fields.get("gate")  # the config itself keeps what was asked for
    with pytest.raises(ConfigError, match="gate"):
        AugNetConfig(gate="yes")
    # the probe: chunked under the gate unless asked otherwise, whole without it
    assert policy.config.probe_chunk == (GATED_PROBE_CHUNK if gated else None)
    assert AugNetConfig(**fields).probe_chunk is None
    # and probed every GATED_PROBE_EVERY rounds under the gate, every round without it
    assert policy.config.probe_every == (GATED_PROBE_EVERY if gated else 1)
    assert AugNetConfig(**fields).probe_every is None
    if fields.get("reward") != "val-drop":  # which needs a probe every round
        assert AugNetConfig(**fields, probe_every=2).resolved(stacked).probe_every == 2
    explicit = AugNetConfig(**fields, probe_chunk=256).resolved(stacked)
    assert explicit.probe_chunk == 256 and explicit.resolved(stacked) == explicit
    assert policy.config.resolved(not stacked) == policy.config  # resolving twice changes nothing


def test_slots_draw_that_many_ops_per_sample_from_one_distribution_and_credit_each():
    target = SPACE.index("Brightness")
    policy = _run_policy(PaysFor(target), rounds=40, slots=2)
    assert policy.op_probabilities["Brightness"] > 0.5, policy.op_probabilities  # uniform: 1/6
    plan = policy.sample(4000)
    assert plan.op_ids.shape == (4000, 2)  # no base here: AugNet's two slots are the whole plan
    probs = torch.tensor(list(policy.op_probabilities.values()))
    for slot in range(2):  # each slot is drawn from the round's distribution on its own
        freq = torch.bincount(plan.op_ids[:, slot], minlength=len(SPACE)).float() / 4000
        assert torch.allclose(freq, probs, atol=0.03), (slot, freq, probs)
    # one transition per draw: a round of 4 x 64 samples stores 512, each sample's advantage on both its draws
    fresh = _run_policy(PaysFor(target), rounds=1, slots=2, buffer_size=4096)
    assert fresh._buffer["op"].shape == (4 * 64 * 2,)
    advantage = fresh._buffer["advantage"].view(-1, 2)
    assert torch.equal(advantage[:, 0], advantage[:, 1])
    paid = (fresh._buffer["op"].view(-1, 2) == target).any(1)
    assert bool((advantage[paid, 0] > advantage[~paid, 0].max()).all())  # the rigged reward, standardised


def test_two_ops_per_sample_by_default_on_text_classification_only(tmp_path):
    import json

    from adaptaug.policies import build_policy
    from adaptaug.tasks import build_task, op_modality
    folder = tmp_path / "sst2"
    folder.mkdir()
    lines = "".join(json.dumps({"text": f"a good film number {i}", "label": i % 2}) + "\n" for i in range(40))
    (folder / "train.jsonl").write_text(lines)
    (folder / "test.jsonl").write_text(lines[:200].rsplit("\n", 1)[0] + "\n")
    assert op_modality("conll2003") == "tagging"
    for name, data, slots in (("digits", None, 1), ("sst2", folder, 2)):
        task = build_task(name, data)
        assert op_modality(name) == task.op_space.modality  # compare resolves by the name, AugNet by its ops
        policy = build_policy("augnet", task, 100, torch.Generator().manual_seed(0))
        assert policy.config.slots == slots
        one = build_policy("augnet", task, 100, torch.Generator().manual_seed(0), augnet=AugNetConfig(slots=1))
        assert one.config.slots == 1
    assert policy.sample(8).op_ids.shape == (8, 2)  # text: no base underneath, AugNet's two slots are the plan


def test_a_reward_must_give_one_value_per_sample():
    class PerDraw(PaysFor):
        def __call__(self, data):
            return [(s.op_idx == self.op).float() for s in data.steps]  # (B, slots): one per draw, not per sample

    with pytest.raises(ConfigError, match=r"one value per sample of a step, \(64,\); got \(64, 2\)"):
        _run_policy(PerDraw(1), rounds=1, slots=2)
    with pytest.raises(ConfigError, match="slots must be >= 1"):
        AugNetConfig(slots=0)


def test_constant_reward_stays_near_uniform():
    policy = _run_policy(PaysFor(None))
    probs = torch.tensor(list(policy.op_probabilities.values()))
    assert (probs - 1 / len(SPACE)).abs().max() < 0.03, probs


def _count_probes(policy) -> None:
    policy.probes = 0
    run_probe = policy._run_probe

    def counted(*args):
        policy.probes += 1
        return run_probe(*args)

    policy._run_probe = counted


def test_frozen_augnet_does_not_learn_and_skips_its_feedback():
    policy = _run_policy(PaysFor(SPACE.index("Brightness")), rounds=20, learn=False, on_policy=_count_probes)
    probs = torch.tensor(list(policy.op_probabilities.values()))
    assert torch.allclose(probs, torch.full_like(probs, 1 / len(SPACE)))
    assert policy.probes == 0 and policy.trace == []  # a uniform policy needs no probe


def test_frozen_augnet_trains_with_plans_drawn_further_ahead_than_a_round(tmp_path):
    # a frozen AugNet lets the loop draw 16 plans at once (plans_ahead: any), past its round-sized queue of draws
    # not yet observed; observing them must not ask for a draw it no longer holds (it did, so every frozen run failed)
    from adaptaug.config import TrainConfig
    from adaptaug.train import train
    config = TrainConfig(epochs=1, limit=400, robustness=False, out=str(tmp_path / "run"),
                         augnet=AugNetConfig(learn=False), augment_ahead=16)
    result = train(config, progress=False)
    assert len(result.history) == 1 and result.trace == [] and (tmp_path / "run" / "metrics.json").is_file()


@pytest.mark.parametrize("probe_every,probes", [(1, 20), (4, 5)])
def test_probe_every_sets_how_often_the_probe_runs(probe_every, probes):
    # 20 rounds: exactly one probe per round (the first round's reference is that round's probe), or one per 4
    policy = _run_policy(PaysFor(SPACE.index("Brightness")), rounds=20, probe_every=probe_every,
                         on_policy=_count_probes)
    assert policy.probes == probes
    assert len(policy.trace) == 20  # the policy still updates every round
    assert policy.op_probabilities["Brightness"] > 1 / len(SPACE)


def test_probe_every_state_dict_carries_the_cached_probe():
    # the cached probe result travels in the state dict, so a resumed policy reuses it as an uninterrupted
    # one would instead of probing afresh
    whole = _run_policy(PaysFor(2), rounds=9, probe_every=4)
    part = _run_policy(PaysFor(2), rounds=5, probe_every=4, total_rounds=9)
    assert whole.trace[:5] == part.trace
    fresh = AugNetPolicy(SPACE, 10, total_steps=9 * 4, config=AugNetConfig(update_every=4, probe_every=4))
    fresh.attach(part._model, part.loss_fn, *part._probe, head=part._model[1])
    fresh.load_state_dict(part.state_dict())
    assert fresh._rounds_done == 5 and fresh.trace == part.trace
    for ours, theirs in zip(fresh._probe_result, part._probe_result):
        assert torch.equal(ours, theirs) if isinstance(ours, torch.Tensor) else ours == theirs


def test_chunked_probe_of_an_unchanged_model_equals_the_whole_probe():
    # chunks of 64 over a 200-sample probe (the last chunk short): once every chunk has run, the result is the
    # whole probe's, rows in the same order; before that, the chunks seen so far
    trained = _run_policy(PaysFor(2), rounds=1)
    whole = AugNetPolicy(SPACE, 10, total_steps=4)  # both with the default (gradient) reward
    chunked = AugNetPolicy(SPACE, 10, total_steps=4, config=AugNetConfig(probe_chunk=64))
    for policy in (whole, chunked):
        policy.attach(trained._model, trained.loss_fn, *trained._probe, head=trained._model[1])
    loss, acc, grad, features = whole._probe_step()
    sizes = []
    for _ in range(4):
        part = chunked._probe_step()
        sizes.append(part[2].shape[0])
    assert sizes == [64, 128, 192, 200]
    assert part[0] == pytest.approx(loss, rel=1e-6) and part[1] == pytest.approx(acc, rel=1e-6)
    torch.testing.assert_close(part[2], grad)
    torch.testing.assert_close(part[3], features)
    assert chunked._next_chunk == 4 and chunked._probe_step()[2].shape[0] == 200  # the turn wraps round


def test_chunked_probe_forwards_one_chunk_per_probe_and_resumes_its_turn():
    sizes = []

    def record_sizes(policy):
        run_probe = policy._run_probe
        policy._run_probe = lambda inputs, targets: (sizes.append(len(targets)), run_probe(inputs, targets))[1]

    policy = _run_policy(PaysFor(SPACE.index("Brightness")), rounds=20, probe_chunk=64, on_policy=record_sizes)
    assert sizes == [64, 64, 64, 8] * 5  # a 200-sample probe, one chunk per round
    assert policy.op_probabilities["Brightness"] > 1 / len(SPACE)  # it still learns
    whole = _run_policy(PaysFor(2), rounds=9, probe_chunk=64)
    part = _run_policy(PaysFor(2), rounds=5, probe_chunk=64, total_rounds=9)
    fresh = AugNetPolicy(SPACE, 10, total_steps=9 * 4, config=AugNetConfig(update_every=4, probe_chunk=64))
    fresh.attach(part._model, part.loss_fn, *part._probe, head=part._model[1])
    fresh.load_state_dict(part.state_dict())
    assert fresh._next_chunk == part._next_chunk == 1 and set(fresh._chunk_results) == {0, 1, 2, 3}
    for i, result in part._chunk_results.items():
        torch.testing.assert_close(fresh._chunk_results[i], result)
    assert whole.trace[:5] == part.trace


def test_val_drop_needs_a_probe_every_round():
    with pytest.raises(ConfigError, match="probe_every 1"):
        AugNetConfig(reward="val-drop", probe_every=4)
    with pytest.raises(ConfigError, match="probe_chunk >= probe_size"):
        AugNetConfig(reward="val-drop", probe_chunk=64)
    with pytest.raises(ConfigError, match="probe_chunk must be >= 1"):
        AugNetConfig(probe_chunk=0)


def test_same_seed_same_decisions():
    a = _run_policy(PaysFor(2), rounds=10)
    b = _run_policy(PaysFor(2), rounds=10)
    assert a.trace == b.trace
    plan_a, plan_b = a.sample(32), b.sample(32)
    assert torch.equal(plan_a.op_ids, plan_b.op_ids) and torch.equal(plan_a.magnitudes, plan_b.magnitudes)


@pytest.mark.parametrize("reward", ["cosine", "paired"])
def test_alignment_reward_prefers_ops_that_keep_the_label(reward):
    """Real learning signal: a label-destroying op loses probability under the default reward and the paired
    one (whose clean pass must leave the model in training mode)."""
    if "TestBlank" not in OP_REGISTRY:  # flat grey: destroys the label completely
        register_op(OpSpec("TestBlank", "image", lambda x, m, g: torch.full_like(x, 0.5), range=(0, 1)))
    space = OpSpace.of(["Identity", "Rotate", "TranslateX", "Contrast", "TestBlank"])
    torch.manual_seed(0)
    images, labels = _digits_batches()
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(1024, 64), nn.ReLU())
    head = nn.Linear(64, 10)
    model = nn.Sequential(net, head)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    policy = AugNetPolicy(space, 10, total_steps=400, config=AugNetConfig(reward=reward),
                          generator=torch.Generator().manual_seed(0))
    loss_fn = lambda logits, y: F.cross_entropy(logits, y, reduction="none")  # noqa: E731
    policy.attach(model, loss_fn, images[1500:], labels[1500:], head=head)
    g = torch.Generator().manual_seed(1)
    for _ in range(400):
        idx = torch.randint(0, 1500, (64,), generator=g)
        logits = model(policy(images[idx]))
        loss = loss_fn(logits, labels[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        policy.observe(logits, labels[idx])
        assert model.training
    p_blank = policy.op_probabilities["TestBlank"]
    assert p_blank < 0.10, policy.op_probabilities  # uniform start: 0.20


@pytest.mark.parametrize("reused_outputs", [False, True])
def test_a_round_keeps_a_copy_of_the_features_when_the_step_reuses_its_outputs(reused_outputs: bool):
    # under CUDA graphs the step writes its outputs (the last layer's input among them) into the same memory every
    # step, so the features a round keeps for its reward must be copies; otherwise the hook's own tensor is kept
    images, labels = _digits_batches()
    head = nn.Linear(32, 10)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), head)
    policy = AugNetPolicy(SPACE, 10, total_steps=40, config=AugNetConfig(update_every=4),
                          generator=torch.Generator().manual_seed(0))
    loss_fn = lambda logits, y: F.cross_entropy(logits, y, reduction="none")  # noqa: E731
    policy.attach(net, loss_fn, images[-64:], labels[-64:], head=head, reused_outputs=reused_outputs)
    idx = torch.arange(32)
    logits = net(policy(images[idx]))
    policy.observe(logits, labels[idx])
    kept = policy._pending[-1].features
    shares = kept.untyped_storage().data_ptr() == policy._features.untyped_storage().data_ptr()
    assert shares != reused_outputs
    assert torch.equal(kept, policy._features)


def test_observe_before_attach_is_a_clear_error():
    policy = AugNetPolicy(SPACE, 10, total_steps=10)
    policy.sample(4)
    with pytest.raises(ConfigError, match="attach"):
        policy.observe(torch.zeros(4, 10), torch.zeros(4, dtype=torch.long))


def test_unknown_reward_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown reward 'nope'"):
        AugNetPolicy(SPACE, 10, total_steps=10, config=AugNetConfig(reward="nope"))


def test_dropped_state_features_read_zero_and_unknown_ones_are_errors():
    from adaptaug.feedback import STATE_FEATURES
    kept = AugNetPolicy(SPACE, 10, total_steps=10)
    dropped = AugNetPolicy(SPACE, 10, total_steps=10, config=AugNetConfig(drop_features=("gap", "progress")))
    for name, full, ablated in zip(STATE_FEATURES, kept._state, dropped._state):
        assert ablated == (0 if name in ("gap", "progress") else full)
    assert kept._state[STATE_FEATURES.index("train_loss")] != 0  # so the comparison above can fail
    with pytest.raises(ConfigError, match="unknown AugNet state feature 'nope'"):
        AugNetConfig(drop_features=("nope",))


def test_mixed_reward_adds_harder_samples_to_alignment():
    from adaptaug.rewards import StepRecord
    # two samples with the same alignment; the second is harder on its augmented input than on its clean one
    dz = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    record = StepRecord(op_idx=torch.tensor([0, 1, 2]), bins=torch.zeros(3, dtype=torch.long), grad_logits=dz,
                        features=torch.ones(3, 1), loss=torch.tensor([1.0, 2.0, 1.0]),
                        clean_loss=torch.tensor([1.0, 1.0, 1.0]))
    data = RoundData([record], 1.0, 1.0, probe_grad_logits=torch.tensor([[1.0, 0.0]]),
                     probe_features=torch.ones(1, 1))
    aligned = get_reward("alignment")(data)[0]
    mixed = get_reward("mixed")(data)[0]
    assert aligned[0] == aligned[1] > aligned[2]  # alignment alone cannot tell 0 from 1
    assert mixed[1] > mixed[0] > mixed[2]  # the mixed reward prefers the harder of two helpful samples


def test_cosine_reward_ignores_gradient_size():
    # two samples with the same gradient direction, one 10x larger (a harder sample): alignment pays the large
    # one 10x, cosine pays both the same
    from adaptaug.rewards import AlignmentReward, CosineReward, StepRecord

    g = torch.Generator().manual_seed(0)
    probe_dz, probe_h = torch.randn(8, 3, generator=g), torch.randn(8, 5, generator=g)
    dz = torch.randn(1, 3, generator=g)
    h = torch.randn(1, 5, generator=g)
    step = StepRecord(op_idx=torch.tensor([0, 1]), bins=torch.tensor([0, 0]), grad_logits=torch.cat([dz, 10 * dz]),
                      features=torch.cat([h, h]))
    data = RoundData([step], 0.0, 0.0, probe_dz, probe_h)
    (dot,) = AlignmentReward()(data)
    (cos,) = CosineReward()(data)
    torch.testing.assert_close(dot[1], 10 * dot[0])
    torch.testing.assert_close(cos[1], cos[0])


def test_paired_reward_is_the_cosine_gain_over_the_clean_sample():
    from adaptaug.rewards import CosineReward, StepRecord

    g = torch.Generator().manual_seed(0)
    probe_dz, probe_h = torch.randn(8, 3, generator=g), torch.randn(8, 5, generator=g)
    dz, h = torch.randn(4, 3, generator=g), torch.randn(4, 5, generator=g)
    clean_dz, clean_h = torch.randn(4, 3, generator=g), torch.randn(4, 5, generator=g)
    ops = torch.tensor([0, 1, 2, 3])
    step = StepRecord(op_idx=ops, bins=ops, grad_logits=dz, features=h, clean_grad_logits=clean_dz,
                      clean_features=clean_h)
    (paired,) = get_reward("paired")(RoundData([step], 0.0, 0.0, probe_dz, probe_h))
    cosine = CosineReward()
    (augmented,) = cosine(RoundData([step], 0.0, 0.0, probe_dz, probe_h))
    (clean,) = cosine(RoundData([StepRecord(op_idx=ops, bins=ops, grad_logits=clean_dz, features=clean_h)],
                                0.0, 0.0, probe_dz, probe_h))
    torch.testing.assert_close(paired, augmented - clean)
    assert paired.abs().min() > 1e-3  # not trivially zero
    unchanged = StepRecord(op_idx=ops, bins=ops, grad_logits=dz, features=h, clean_grad_logits=dz, clean_features=h)
    (none,) = get_reward("paired")(RoundData([unchanged], 0.0, 0.0, probe_dz, probe_h))
    assert torch.equal(none, torch.zeros(4))  # an op that changed nothing earns exactly nothing
    with pytest.raises(ConfigError, match="clean-input gradients"):
        get_reward("paired")(RoundData([StepRecord(op_idx=ops, bins=ops, grad_logits=dz, features=h)], 0.0, 0.0,
                                       probe_dz, probe_h))


class PaysHardForBrightness:
    """Rigged: pays samples that were hard (hardness > 0 in their state row) for Brightness, easy ones for
    Identity. Only a policy that reads each sample's own row can earn it."""
    name, per_sample, needs_gradients, needs_clean_loss = "rigged-hardness", True, False, False

    def __call__(self, data: RoundData) -> list[torch.Tensor]:
        out = []
        for s in data.steps:
            hard = s.states[:, -1] > 0
            wanted = torch.where(hard, SPACE.index("Brightness"), SPACE.index("Identity"))
            out.append((s.op_idx == wanted[:, None]).any(1).float())
        return out


def test_per_sample_augnet_decides_from_each_samples_loss():
    images, labels = _digits_batches()
    torch.manual_seed(0)
    head = nn.Linear(32, 10)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), head)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    rounds = 150
    # a conditional policy needs more of each round's 256 transitions per update than the global one's 32
    config = AugNetConfig(per_sample=True, minibatch=256)
    policy = AugNetPolicy(SPACE, 10, total_steps=rounds * 4, config=config, generator=torch.Generator().manual_seed(0))
    policy.reward = PaysHardForBrightness()
    loss_fn = lambda logits, y: F.cross_entropy(logits, y, reduction="none")  # noqa: E731
    policy.attach(net, loss_fn, images[-200:], labels[-200:], head=head)
    g = torch.Generator().manual_seed(0)
    from adaptaug.augment import apply_plan
    for _ in range(rounds * 4):
        idx = torch.randint(0, 1000, (64,), generator=g)
        logits = net(apply_plan(images[idx], policy.sample(64, sample_ids=idx)))
        loss = loss_fn(logits, labels[idx])
        opt.zero_grad()
        loss.mean().backward()
        opt.step()
        policy.observe(logits, labels[idx])
    # the memory holds a loss for every sample seen, and only for those
    memory = policy._loss_memory
    assert memory.shape[0] <= 1000 and memory.isfinite().sum() > 900
    # the same round state, two hardness values: the policy answers each as it was paid
    rows = policy._state.expand(2, -1).clone()
    rows = torch.cat([rows, torch.tensor([[2.0], [-2.0]])], dim=1)
    op_probs = policy._distributions(rows)[0]
    b, i = SPACE.index("Brightness"), SPACE.index("Identity")
    assert op_probs[0, b] > 0.5 > op_probs[0, i], op_probs[0]  # hard -> Brightness
    assert op_probs[1, i] > 0.5 > op_probs[1, b], op_probs[1]  # easy -> Identity
    # a checkpoint carries the memory
    restored = AugNetPolicy(SPACE, 10, total_steps=rounds * 4, config=config)
    restored.attach(net, loss_fn, images[-200:], labels[-200:], head=head)
    restored.load_state_dict(policy.state_dict())
    assert torch.equal(restored._loss_memory.nan_to_num(-1), memory.nan_to_num(-1))


def test_hardness_is_a_per_sample_feature_only():
    with pytest.raises(ConfigError, match="per-sample feature"):
        AugNetConfig(drop_features=("hardness",))
    assert AugNetConfig(per_sample=True, drop_features=("hardness",)).drop_features == ("hardness",)


@pytest.mark.parametrize("wide", [True, False])
def test_narrow_augnet_draws_randaugments_ranges(wide):
    # augnet[narrow]: every magnitude inside RandAugment's range; the wide default reaches past it
    space = OpSpace.of(("Rotate", "ShearX", "Posterize"))
    policy = AugNetPolicy(space, 10, total_steps=4, config=AugNetConfig(wide=wide),
                          generator=torch.Generator().manual_seed(0))
    plan = policy.sample(4096)
    for k, spec in enumerate(space.specs):
        mags = plan.magnitudes[plan.op_ids == k].abs()
        assert mags.numel() > 0
        assert bool(mags.max() > spec.range[1]) is wide
        assert mags.max() <= (spec.wide_range if wide else spec.range)[1] + 1e-6


def test_warmup_raises_the_augmented_share_and_learns_only_from_augmented_samples():
    # warmup 0.5 over 40 rounds of 4 steps: the share of samples with an op rises 0 -> 1 over the first 80 steps
    config = AugNetConfig(update_every=4, warmup=0.5)
    policy = AugNetPolicy(SPACE, 10, total_steps=160, config=config, generator=torch.Generator().manual_seed(0))
    shares, stored = [], []
    for step in range(160):
        plan = policy.sample(64)
        shares.append(float((plan.op_ids[:, 0] >= 0).float().mean()))
        applied = policy._unobserved.popleft().applied
        assert applied is None or applied.sum() == (plan.op_ids[:, 0] >= 0).sum()
    assert shares[0] == 0.0  # nothing at the start
    assert 0.3 < sum(shares[35:45]) / 10 < 0.7  # about half at a quarter of training (step 40 of 80)
    assert min(shares[80:]) == 1.0  # every sample after the warmup
    assert policy.augmented_share == 1.0

    # learning: a rigged reward still lifts its op, and the buffer holds only the samples that got an op
    def record(p):
        original = p._store

        def store(steps, advantages):
            stored.append((sum(int(s.applied.sum()) if s.applied is not None else s.op_idx.shape[0]
                               for s in steps), advantages.shape[0]))
            original(steps, advantages)
        p._store = store

    learned = _run_policy(PaysFor(SPACE.index("Brightness")), rounds=60,
                          on_policy=lambda p: (setattr(p.config, "warmup", 0.5), record(p)))
    assert all(applied == n for applied, n in stored)
    assert stored[0][1] < 4 * 64 / 4 and stored[-1][1] == 4 * 64  # few transitions early, all of them late
    assert learned.op_probabilities["Brightness"] > 0.5


class _Noise:
    """A per-sample reward of pure N(0, 1) noise: nothing to learn."""
    name, per_sample, needs_gradients, needs_clean_loss = "noise", True, False, False

    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, data: RoundData) -> list[torch.Tensor]:
        return [torch.randn(s.op_idx.shape[0], generator=self.generator) for s in data.steps]


def _final_entropy(policy) -> float:
    probs = torch.tensor(list(policy.op_probabilities.values()))
    return float(-(probs * probs.log()).sum() / math.log(len(probs)))


def test_warmup_steps_wait_for_fresh_transitions_and_do_not_drift_on_noise():
    """Early in a warmup a round stores a few transitions. The old rule stepped every round on the whole buffer,
    replaying them, and collapsed on pure noise in every seed (entropy at the 0.23 floor within 100 rounds);
    fresh updates step once a minibatch of new transitions is in, on the two latest steps' transitions."""
    fresh_seen = []

    def watch(p):
        p.config.warmup = 1.0
        original = p.optimizer.step

        def step(*args, **kwargs):
            fresh_seen.append(p._previous_fresh)  # what this step waited for (set just before it runs)
            return original(*args, **kwargs)
        p.optimizer.step = step

    entropies = {}
    for fresh in (True, False):
        entropies[fresh] = []
        for seed in range(3):
            fresh_seen.clear()
            policy = _run_policy(_Noise(seed), rounds=100, total_rounds=800, seed=seed,
                                 on_policy=lambda p: (setattr(p.config, "fresh_updates", fresh), watch(p)))
            entropies[fresh].append(_final_entropy(policy))
            if fresh:
                assert fresh_seen and min(fresh_seen) >= policy.config.minibatch
                assert len(fresh_seen) < 60  # 100 rounds of a share under 1/8: far fewer steps than rounds
    assert max(entropies[False]) < 0.3, entropies  # stale: collapsed on noise
    assert min(entropies[True]) > 0.5, entropies  # fresh: still spread out


def test_long_rounds_keep_augnet_from_drifting_on_noise_and_still_learn():
    """A policy step per 4 training steps on 32 transitions lets pure noise collapse the op distribution and send
    the gate to its bounds; one step per 32 training steps on all 2,048 transitions of the round keeps both near
    where they started, and still learns a rigged reward within 400 steps (reports/augnet-long-rounds/)."""
    long_rounds = dict(update_every=32, minibatch=2048, buffer_size=2048)
    default = _run_policy(_Noise(2), rounds=300, seed=2, gate=True)
    long = _run_policy(_Noise(2), rounds=300, seed=2, gate=True, **long_rounds)
    assert min(row["entropy"] for row in default.trace) < 0.3  # collapsed onto one op
    assert max(abs(row["augmented_share"] - 0.5) for row in default.trace) > 0.4  # the gate at a bound
    assert min(row["entropy"] for row in long.trace) > 0.6
    assert max(abs(row["augmented_share"] - 0.5) for row in long.trace) < 0.25
    assert _run_policy(PaysForApplying(False), rounds=100, gate=True, **long_rounds).augmented_share < 0.1
    rigged = _run_policy(PaysFor(SPACE.index("Brightness")), rounds=100, gate=True, **long_rounds)
    assert rigged.op_probabilities["Brightness"] > 0.8


def test_trust_region_bounds_each_policy_step_and_slows_drift_on_noise():
    """With max_kl every policy step moves AugNet's distribution (ops, bins, gate) on the step's states by at most
    max_kl; on pure noise, where the default collapses onto one op within 300 rounds, the policy stays near
    uniform, and a rigged reward and a rigged gate are still learnt within 100 rounds."""
    moves = []

    def watch(p):
        original = p._within_trust_region

        def bounded(before, rows, old):
            original(before, rows, old)
            moves.append(p._policy_kl(old, p._distributions(rows)))
        p._within_trust_region = bounded

    max_kl = 0.0003
    noise = _run_policy(_Noise(2), rounds=300, seed=2, gate=True, max_kl=max_kl, on_policy=watch)
    assert len(moves) == 300 and max(moves) <= max_kl, max(moves)
    assert 0 < noise.trust_region_cuts < 300  # some steps were cut, not all undone
    assert noise.trace[-1]["trust_region_cuts"] == noise.trust_region_cuts
    assert min(row["entropy"] for row in noise.trace) > 0.8  # the default falls below 0.3 (test above)
    rigged = _run_policy(PaysFor(SPACE.index("Brightness")), rounds=100, gate=True, max_kl=max_kl)
    assert rigged.op_probabilities["Brightness"] > 0.7  # uniform: 1/6
    assert _run_policy(PaysForApplying(False), rounds=100, gate=True, max_kl=max_kl).augmented_share < 0.1
    restored = AugNetPolicy(SPACE, 10, total_steps=400, config=rigged.config)
    restored.load_state_dict(rigged.state_dict())
    assert restored.trust_region_cuts == rigged.trust_region_cuts > 0
    with pytest.raises(ConfigError, match="max_kl"):
        AugNetConfig(max_kl=0.0)


def test_without_a_warmup_fresh_updates_change_nothing():
    traces = []
    for fresh in (True, False):
        # minibatch 300 > a round's 256 transitions: were the rule on, steps would wait for a second round
        policy = _run_policy(PaysFor(SPACE.index("Brightness")), rounds=12,
                             on_policy=lambda p: (setattr(p.config, "fresh_updates", fresh),
                                                  setattr(p.config, "minibatch", 300)))
        traces.append([(row["p_Brightness"], row["entropy"]) for row in policy.trace])
    assert traces[0] == traces[1]


def test_warmup_clock_runs_frozen_and_resumes_from_a_state_dict():
    config = AugNetConfig(warmup=1.0, learn=False)
    policy = AugNetPolicy(SPACE, 10, total_steps=100, config=config, generator=torch.Generator().manual_seed(0))
    for _ in range(50):
        policy.sample(8)
    assert policy.augmented_share == pytest.approx(0.5)  # a frozen AugNet never observes, the clock still runs
    resumed = AugNetPolicy(SPACE, 10, total_steps=100, config=config)
    resumed.load_state_dict(policy.state_dict())
    assert resumed.augmented_share == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="warmup"):
        AugNetConfig(warmup=1.5)


@pytest.mark.parametrize("fields", [{}, {"gate": True}, {"warmup": 0.5}, {"slots": 2}])
@pytest.mark.parametrize("ahead", [3, 4, 8])
def test_plans_drawn_ahead_within_a_round_are_the_plans_drawn_one_by_one(ahead, fields):
    # the trainer draws several batches' plans before it observes the first (train._augmented), as far as
    # plans_ahead allows: the plans and what AugNet learns must be those of drawing one at a time, bit for bit
    from adaptaug.augment import apply_plan

    def drive(look_ahead: int):
        torch.manual_seed(0)
        images, labels = _digits_batches()
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        policy = AugNetPolicy(SPACE, 10, total_steps=40, config=AugNetConfig(update_every=4, **fields),
                              generator=torch.Generator().manual_seed(0))
        loss_fn = lambda logits, y: F.cross_entropy(logits, y, reduction="none")  # noqa: E731
        policy.attach(net, loss_fn, images[-200:], labels[-200:], head=net[-1])
        g, plans, steps = torch.Generator().manual_seed(0), [], 0
        while steps < 40:
            k = min(look_ahead, policy.plans_ahead(), 40 - steps)
            drawn = [(torch.randint(0, 1500, (64,), generator=g), policy.sample(64)) for _ in range(k)]
            for idx, plan in drawn:
                logits = net(apply_plan(images[idx], plan))
                opt.zero_grad()
                loss_fn(logits, labels[idx]).mean().backward()
                opt.step()
                policy.observe(logits, labels[idx], clean_inputs=images[idx])
            plans += [plan for _, plan in drawn]
            steps += k
        return plans, policy.trace

    one_by_one, ahead_plans = drive(1), drive(ahead)
    assert len(one_by_one[0]) == len(ahead_plans[0]) == 40
    for a, b in zip(one_by_one[0], ahead_plans[0]):
        assert torch.equal(a.op_ids, b.op_ids) and torch.equal(a.magnitudes, b.magnitudes) and a.seed == b.seed
    assert one_by_one[1] == ahead_plans[1] and len(one_by_one[1]) == 10  # the same 10 rounds learnt


def test_plans_ahead_without_a_cap_would_draw_across_the_round():
    # the cap is what the test above relies on: a policy that ignored it would draw the next round's first plan
    # from the distribution before the round's update
    policy = AugNetPolicy(SPACE, 10, total_steps=40, config=AugNetConfig(update_every=4),
                          generator=torch.Generator().manual_seed(0))
    assert policy.plans_ahead() == 4
    policy.sample(8)
    assert policy.plans_ahead() == 3
    frozen = AugNetPolicy(SPACE, 10, total_steps=40, config=AugNetConfig(learn=False))
    assert frozen.plans_ahead() is None  # a uniform policy: its plans never depend on feedback


def test_augnet_keeps_its_bookkeeping_on_one_thread_and_the_probe_on_the_loops_threads(two_threads):
    """The probe is a forward of the primary model: on a CPU it keeps the loop's threads, while AugNet's own
    tiny tensors (its net, its update, the step's loss) run on one (adaptaug.host_threads)."""
    threads = {"probe": set(), "update": set()}

    def spy(policy):
        run_probe, update = policy._run_probe, policy._update
        policy._run_probe = lambda *a: (threads["probe"].add(torch.get_num_threads()), run_probe(*a))[1]
        policy._update = lambda: (threads["update"].add(torch.get_num_threads()), update())[1]

    _run_policy(PaysFor(SPACE.index("Brightness")), rounds=3, on_policy=spy)
    assert torch.get_num_threads() == 2
    assert threads == {"probe": {2}, "update": {1}}
