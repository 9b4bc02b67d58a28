"""LSTM over frames with a NADE output layer (the `music-nade` model of docs/model-format.md).

Parameter names match the exported tensor names: `lstm.*` (torch.nn.LSTM) and `nade.*`.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class NADE(nn.Module):
    """NADE over N binary variables in index order, conditioned on a vector s of size C.

    b = b_proj(s), c = c_proj(s)
    h_i = sigmoid(c + W[:, :i] v[:i]);  p(v_i = 1) = sigmoid(b_i + V[i] . h_i)
    """

    def __init__(self, visible, hidden, cond_size):
        super().__init__()
        self.visible, self.hidden = visible, hidden
        self.W = nn.Parameter(torch.randn(hidden, visible) * 0.01)
        self.V = nn.Parameter(torch.randn(visible, hidden) * 0.01)
        self.b_proj = nn.Linear(cond_size, visible)
        self.c_proj = nn.Linear(cond_size, hidden)

    def logits(self, s, v):
        """Logits of the N conditionals given the true prefixes (teacher forcing): (..., N)."""
        b = self.b_proj(s)
        c = self.c_proj(s)
        contrib = v.unsqueeze(-1) * self.W.t()  # (..., N, Hn): v_j W[:, j]
        acc = torch.cumsum(contrib, dim=-2) - contrib  # exclusive prefix sums: W[:, :i] v[:i]
        h = torch.sigmoid(c.unsqueeze(-2) + acc)
        return b + (h * self.V).sum(-1)

    def nll(self, s, v):
        """-log p(v | s) per frame, natural log: (...)."""
        return F.binary_cross_entropy_with_logits(self.logits(s, v), v, reduction="none").sum(-1)


class MusicModel(nn.Module):
    def __init__(self, visible, lstm_hidden=256, lstm_layers=2, nade_hidden=150, dropout=0.0):
        super().__init__()
        self.cfg = dict(visible=visible, lstm_hidden=lstm_hidden, lstm_layers=lstm_layers,
                        nade_hidden=nade_hidden, dropout=dropout)
        self.lstm = nn.LSTM(visible, lstm_hidden, num_layers=lstm_layers, batch_first=True,
                            dropout=dropout if lstm_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.nade = NADE(visible, nade_hidden, lstm_hidden)

    def cond(self, inputs):
        """inputs (B, T, N): the previous frames; returns the top LSTM outputs (B, T, H)."""
        out, _ = self.lstm(inputs)
        return self.drop(out)

    def frame_nll(self, inputs, targets):
        """Per-frame NLL (B, T) of targets given inputs (teacher forcing)."""
        return self.nade.nll(self.cond(inputs), targets)


def shift_inputs(x):
    """Input at frame t is frame t-1, zeros at t = 0. x: (T, N) or (B, T, N)."""
    z = torch.zeros_like(x)
    z[..., 1:, :] = x[..., :-1, :]
    return z
