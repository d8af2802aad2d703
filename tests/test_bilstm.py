"""PaddedBiLSTM: the same numbers as a packed bidirectional nn.LSTM (the reference semantics), on padded
batches, with padding that can hold anything."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from adaptaug.models.bilstm import PaddedBiLSTM, reverse_within_length


def _packed_reference(ours: PaddedBiLSTM, input_dim: int, hidden: int, layers: int) -> nn.LSTM:
    """A packed-sequence nn.LSTM holding ``ours``'s weights (direction d of layer l -> l / l_reverse)."""
    ref = nn.LSTM(input_dim, hidden, num_layers=layers, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for layer in range(layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(ref, f"{name}_l{layer}").copy_(getattr(ours.forward_lstms[layer], f"{name}_l0"))
                getattr(ref, f"{name}_l{layer}_reverse").copy_(getattr(ours.backward_lstms[layer], f"{name}_l0"))
    return ref


@pytest.mark.parametrize("layers", [1, 2])
def test_equals_a_packed_bidirectional_lstm(layers: int) -> None:
    torch.manual_seed(0)
    ours = PaddedBiLSTM(12, 8, layers).eval()
    ref = _packed_reference(ours, 12, 8, layers).eval()
    lengths = torch.tensor([7, 3, 1, 5, 7])
    x = torch.randn(5, 7, 12)
    out, final = ours(x, lengths)
    packed, (h_n, _) = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    expected, _ = pad_packed_sequence(packed, batch_first=True, total_length=7)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(final, torch.cat([h_n[-2], h_n[-1]], dim=1))
    # gradients agree too
    x.requires_grad_(True)
    (g_ours,) = torch.autograd.grad(ours(x, lengths)[1].square().sum(), x)
    packed, (h_n, _) = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    (g_ref,) = torch.autograd.grad(torch.cat([h_n[-2], h_n[-1]], 1).square().sum(), x)
    torch.testing.assert_close(g_ours, g_ref)


def test_padding_content_changes_nothing_and_pads_are_zero() -> None:
    torch.manual_seed(1)
    model = PaddedBiLSTM(6, 4).eval()
    lengths = torch.tensor([4, 2, 1])
    x = torch.randn(3, 4, 6)
    noisy = x.clone()
    pad = torch.arange(4).unsqueeze(0) >= lengths.unsqueeze(1)
    noisy[pad] = 100 * torch.randn(int(pad.sum()), 6)
    out, final = model(x, lengths)
    out2, final2 = model(noisy, lengths)
    torch.testing.assert_close(out2, out)
    torch.testing.assert_close(final2, final)
    assert out[pad].abs().max() == 0


def test_reverse_within_length_is_an_involution_that_keeps_pads() -> None:
    x = torch.arange(12).view(2, 6)
    lengths = torch.tensor([4, 6])
    r = reverse_within_length(x, lengths)
    assert r.tolist() == [[3, 2, 1, 0, 4, 5], [11, 10, 9, 8, 7, 6]]
    assert torch.equal(reverse_within_length(r, lengths), x)


def test_bad_shapes_name_the_problem() -> None:
    with pytest.raises(ValueError, match="expected x"):
        PaddedBiLSTM(6, 4)(torch.randn(3, 6), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="layers"):
        PaddedBiLSTM(6, 4, layers=0)
