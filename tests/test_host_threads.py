"""Host bookkeeping runs on one intra-op thread and gives the loop its thread count back."""
import pytest
import torch

from adaptaug.augment import apply_plan
from adaptaug.host_threads import one_thread
from adaptaug.ops.image import RANDAUGMENT_OPS
from adaptaug.ops.space import OpSpace
from adaptaug.policies import RandAugment, StandardAugment


def test_one_thread_restores_the_count_also_after_an_error(two_threads):
    with one_thread():
        assert torch.get_num_threads() == 1
        with one_thread():  # nested: still one, and the outer block's exit restores two
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(ValueError), one_thread():
        raise ValueError("inside")
    assert torch.get_num_threads() == 2


def test_policies_draw_on_one_thread_and_their_plans_do_not_change(two_threads):
    space = OpSpace.of(RANDAUGMENT_OPS)

    def policy():
        gen = torch.Generator().manual_seed(3)
        return RandAugment(space, n=2, m=9, generator=gen, base=StandardAugment(generator=gen))

    seen = []
    drawing = policy()
    own = drawing._sample
    drawing._sample = lambda *args: (seen.append(torch.get_num_threads()), own(*args))[1]
    images = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    plan = drawing.sample(16)
    assert seen == [1] and torch.get_num_threads() == 2
    torch.set_num_threads(1)  # the same seed drawn without the switch gives the same plan and images
    reference = policy().sample(16)
    torch.set_num_threads(2)
    assert torch.equal(plan.op_ids, reference.op_ids) and torch.equal(plan.magnitudes, reference.magnitudes)
    assert torch.equal(apply_plan(images, plan), apply_plan(images, reference))
