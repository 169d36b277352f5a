"""LSTM row of Table 1: a CNN-LSTM [10]. timm has none, so it is written here: a convolutional
stem reads the image into an 8x8 grid of feature vectors, a (bidirectional) LSTM reads that grid
as a sequence in raster order, and its last states feed a linear classifier."""

from __future__ import annotations

import torch
import torch.nn as nn



def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU())


class CNNLSTM(nn.Module):
    def __init__(self, num_classes: int = 100, widths=(64, 128, 256), hidden: int = 256,
                 layers: int = 2, bidirectional: bool = True):
        super().__init__()
        c1, c2, c3 = widths
        self.features = nn.Sequential(
            conv_bn(3, c1), conv_bn(c1, c1), nn.MaxPool2d(2),  # 16x16
            conv_bn(c1, c2), conv_bn(c2, c2), nn.MaxPool2d(2),  # 8x8
            conv_bn(c2, c3), conv_bn(c3, c3),
        )
        self.lstm = nn.LSTM(c3, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        out = hidden * (2 if bidirectional else 1)
        self.norm = nn.LayerNorm(out)
        self.head = nn.Linear(out, num_classes)

    def forward(self, x):  # (B, 3, 32, 32)
        seq = self.features(x).flatten(2).transpose(1, 2)  # (B, 64, C): raster order
        # The LSTM runs in float32: autocast has no bf16 LSTM on every backend, and a
        # recurrence of 64 steps is where reduced precision hurts most.
        with torch.autocast(device_type=x.device.type, enabled=False):
            _, (h, _) = self.lstm(seq.float())  # h: (layers * dirs, B, hidden)
        last = torch.cat(list(h[-(2 if self.lstm.bidirectional else 1):]), dim=-1)  # (B, dirs * hidden)
        return self.head(self.norm(last))


def cnn_lstm(num_classes: int = 100, **kw) -> CNNLSTM:
    return CNNLSTM(num_classes=num_classes, **kw)
