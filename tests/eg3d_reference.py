"""EG3D's generator written a second time, in float64 and along other code paths, to check `warpgan.generator` against.

Written from the definitions in EG3D (`training/triplane.py`, `training/volumetric_rendering/`,
`training/superresolution.py`) and StyleGAN2-ADA's `torch_utils/ops/` (conv2d_resample, upfirdn2d,
bias_act): correlations as sums of shifted slices, the up-sampling convolution as the scatter that
defines a transposed convolution, bilinear plane sampling by hand, compositing as a loop over
samples, inverse-CDF sampling with `numpy.interp`. No `F.conv2d`, `conv_transpose2d` or `grid_sample`.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

D = torch.float64


def correlate(x, k, pad=(0, 0, 0, 0), stride=1):
    "Cross-correlation of `x` `(B, I, H, W)` with `k` `(O, I, kh, kw)` after zero padding (left, right, top, bottom)."
    xp = F.pad(x, pad)
    kh, kw = k.shape[-2:]
    H, W = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    out = 0
    for a in range(kh):
        for b in range(kw):
            out = out + torch.einsum("bchw,oc->bohw", xp[:, :, a:a + H, b:b + W], k[:, :, a, b])
    return out[:, :, ::stride, ::stride]


def fir(x, f, pad, gain=1.0):
    "Depthwise true convolution with the 2D filter `f` (the same for every channel) after zero padding."
    xp = F.pad(x, pad)
    f = f.flip([0, 1]) * gain
    fh, fw = f.shape
    H, W = xp.shape[2] - fh + 1, xp.shape[3] - fw + 1
    return sum(xp[:, :, a:a + H, b:b + W] * f[a, b] for a in range(fh) for b in range(fw))


def transposed_conv(x, w, stride=2):
    "t[n] = Σ_m x[m] w[n − stride·m]: each input pixel scatters its kernel-weighted copy (a true convolution on the zero-inserted grid)."
    B, I, H, W = x.shape
    O, _, kh, kw = w.shape
    t = x.new_zeros(B, O, (H - 1) * stride + kh, (W - 1) * stride + kw)
    for a in range(kh):
        for b in range(kw):
            t[:, :, a:a + (H - 1) * stride + 1:stride, b:b + (W - 1) * stride + 1:stride] += torch.einsum("bchw,oc->bohw", x, w[:, :, a, b])
    return t


def up_conv(x, w, f):
    "StyleGAN2's ×2 up-sampling 3×3 conv: transposed conv (stride 2, (2H+1)² support), then 4·f with one pixel of padding."
    return fir(transposed_conv(x, w), f, (1, 1, 1, 1), gain=4.0)


def down_conv(x, w, f):
    "StyleGAN2's ×2 down-sampling 3×3 conv: f with two pixels of padding, then a stride-2 correlation."
    return correlate(fir(x, f, (2, 2, 2, 2)), w, stride=2)


def upsample(img, f):
    "Zero insertion, then 4·f padded (2, 1): StyleGAN2's `upsample2d`."
    B, C, H, W = img.shape
    z = img.new_zeros(B, C, 2 * H, 2 * W)
    z[:, :, ::2, ::2] = img
    return fir(z, f, (2, 1, 2, 1), gain=4.0)


def dense(layer, x):
    "StyleGAN's equalised-lr fully connected layer, + leaky ReLU · √2 if it has one."
    y = x @ (layer.weight.to(D) * layer.weight_gain).T
    if layer.bias is not None:
        y = y + layer.bias.to(D) * layer.bias_gain
    return F.leaky_relu(y, 0.2) * math.sqrt(2) if layer.activation == "lrelu" else y


def mapping(net, z, c):
    "EG3D's mapping network, with ws broadcast to `num_ws`."
    norm = lambda v: v / (v.square().mean(1, keepdim=True) + 1e-8).sqrt()
    x = torch.cat([norm(z.to(D)), norm(dense(net.embed, c.to(D)))], 1)
    for i in range(net.num_layers):
        x = dense(getattr(net, f"fc{i}"), x)
    return x[:, None].repeat(1, net.num_ws, 1)


def modconv(x, weight, styles, up=1, down=1, f=None, demodulate=True):
    "Modulated (demodulated) convolution, one sample at a time with its own scaled kernel."
    out = []
    for b in range(len(x)):
        w = weight.to(D) * styles[b].to(D)[None, :, None, None]
        if demodulate:
            w = w / (w.square().sum([1, 2, 3], keepdim=True) + 1e-8).sqrt()
        xb, k = x[b:b + 1], w.shape[-1]
        if up > 1:
            out.append(up_conv(xb, w, f.to(D)))
        elif down > 1:
            out.append(down_conv(xb, w, f.to(D)))
        else:
            out.append(correlate(xb, w, (k // 2,) * 4))
    return torch.cat(out)


def bias_act(x, b, lrelu, clamp):
    x = x + b.to(D)[None, :, None, None]
    if lrelu:
        x = torch.where(x >= 0, x, 0.2 * x) * math.sqrt(2)
    return x if clamp is None else x.clamp(-clamp, clamp)


def synthesis_layer(layer, x, w, noise_mode="const"):
    y = modconv(x, layer.weight, dense(layer.affine, w), up=layer.up, f=layer.resample_filter)
    if layer.use_noise and noise_mode == "const":
        y = y + layer.noise_const.to(D) * layer.noise_strength.to(D)
    return bias_act(y, layer.bias, True, layer.conv_clamp)


def torgb(layer, x, w):
    y = modconv(x, layer.weight, dense(layer.affine, w) * layer.weight_gain, demodulate=False)
    return bias_act(y, layer.bias, False, layer.conv_clamp)


def block(blk, x, img, ws, noise_mode="const"):
    w = list(ws.unbind(1))
    if blk.in_channels == 0:
        x = blk.const.to(D)[None].repeat(len(ws), 1, 1, 1)
    else:
        x = synthesis_layer(blk.conv0, x, w.pop(0), noise_mode)
    x = synthesis_layer(blk.conv1, x, w.pop(0), noise_mode)
    if img is not None and blk.up > 1:
        img = upsample(img, blk.resample_filter.to(D))
    y = torgb(blk.torgb, x, w.pop(0))
    return x, (y if img is None else img + y)


def planes(G, ws, noise_mode="const"):
    "The three feature planes `(B, 3, C, H, W)`."
    net, x, img, k = G.backbone.synthesis, None, None, 0
    for r in net.block_resolutions:
        blk = getattr(net, f"b{r}")
        x, img = block(blk, x, img, ws[:, k:k + blk.num_conv + 1], noise_mode)
        k += blk.num_conv
    return img.reshape(len(img), 3, G.plane_channels, *img.shape[-2:])


PLANE_COORDS = {"eg3d": ((0, 1), (0, 2), (2, 0)), "lpff": ((0, 1), (0, 2), (2, 1))}   # (u, v) world axes of each plane


def bilinear(plane, u, v):
    "grid_sample(align_corners=False, zeros) by hand: `plane` `(C, H, W)`, u along the width, v along the height, in [-1, 1]."
    C, H, W = plane.shape
    px, py = ((u + 1) * W - 1) / 2, ((v + 1) * H - 1) / 2
    x0, y0 = torch.floor(px).long(), torch.floor(py).long()
    out = 0
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            wgt = (1 - (px - xi).abs()) * (1 - (py - yi).abs())
            inside = (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H)
            val = plane[:, yi.clamp(0, H - 1), xi.clamp(0, W - 1)] * inside
            out = out + val * wgt
    return out.T                                                # (M, C)


def decoder(dec, feats):
    "OSG decoder on the mean plane feature `(M, C)`: (σ logit, features)."
    x = F.softplus(dense(dec.net[0], feats))
    x = dense(dec.net[2], x)
    return x[:, :1], torch.sigmoid(x[:, 1:]) * (1 + 2 * 0.001) - 0.001


def march(feats, sigma, depths, white_back):
    "Midpoint compositing per sample, transmittance as a running product; depth clamped to the batch's sample range."
    f_mid, s_mid, t_mid = [(v[..., :-1, :] + v[..., 1:, :]) / 2 for v in (feats, sigma, depths)]
    delta = depths[..., 1:, :] - depths[..., :-1, :]
    alpha = 1 - torch.exp(-F.softplus(s_mid - 1) * delta)
    trans = torch.ones_like(alpha[..., 0, :])
    weights = []
    for i in range(alpha.shape[-2]):
        weights.append(alpha[..., i, :] * trans)
        trans = trans * (1 - alpha[..., i, :] + 1e-10)
    w = torch.stack(weights, -2)
    total = w.sum(-2)
    depth = (w * t_mid).sum(-2) / total
    depth = torch.nan_to_num(depth, nan=math.inf).clamp(depths.min(), depths.max())
    feat = (w * f_mid).sum(-2) + (1 - total if white_back else 0)
    return feat * 2 - 1, depth, w


def importance(depths, weights, u):
    "EG3D's `sample_importance`: smooth the weights, then inverse-CDF by linear interpolation of the CDF (one ray at a time)."
    out = []
    for z, w, uu in zip(depths.numpy(), weights[..., 0].numpy(), u.numpy()):
        w = np.concatenate([[w[0]], np.maximum(w[:-1], w[1:]), [w[-1]]])      # max-pool 2, stride 1, padding 1
        w = (w[:-1] + w[1:]) / 2 + 0.01                                        # average-pool 2
        w = w[1:-1] + 1e-5
        cdf = np.concatenate([[0.0], np.cumsum(w / w.sum())])
        mids = (z[:-1, 0] + z[1:, 0]) / 2
        out.append(np.interp(uu, cdf, mids[:len(cdf)]))          # EG3D pairs CDF entry i with midpoint i
    return torch.tensor(np.stack(out))[..., None]


def rays(c, R):
    "EG3D's ray sampler: pixel centres (i + 0.5) / R, lifted with the normalised intrinsics, rotated to world."
    c = c.to(D)
    c2w, K = c[:, :16].reshape(-1, 4, 4), c[:, 16:].reshape(-1, 3, 3)
    v, u = torch.meshgrid((torch.arange(R, dtype=D) + 0.5) / R, (torch.arange(R, dtype=D) + 0.5) / R, indexing="ij")
    u, v = u.reshape(-1), v.reshape(-1)
    out = []
    for m, k in zip(c2w, K):
        y = (v - k[1, 2]) / k[1, 1]
        x = (u - k[0, 2] + k[1, 2] * k[0, 1] / k[1, 1] - k[0, 1] * v / k[1, 1]) / k[0, 0]
        d = torch.stack([x, y, torch.ones_like(x)], -1) @ m[:3, :3].T
        out.append((m[:3, 3].expand_as(d), d / d.norm(dim=-1, keepdim=True)))
    return torch.stack([o for o, _ in out]), torch.stack([d for _, d in out])


def render(G, pl, c, R, rng):
    "Two-pass volume rendering of planes `pl` in cameras `c` at R²; the jitter and the importance draws come from `generator`."
    o = G.rendering_kwargs
    N, Ni = o["depth_resolution"], o["depth_resolution_importance"]
    origins, dirs = rays(c, R)
    B, M = origins.shape[:2]
    base = torch.linspace(o["ray_start"], o["ray_end"], N, dtype=D).reshape(1, 1, N, 1)
    d0 = base + torch.rand(B, M, N, 1, generator=rng).to(D) * (o["ray_end"] - o["ray_start"]) / (N - 1)
    coords = PLANE_COORDS[G.planes]

    def evaluate(d):
        pts = (origins[:, :, None] + d * dirs[:, :, None]) * (2 / o["box_warp"])
        sig, fea = [], []
        for b in range(B):
            p = pts[b].reshape(-1, 3)
            feats = sum(bilinear(pl[b, i].to(D), p[:, a], p[:, bb]) for i, (a, bb) in enumerate(coords)) / 3
            s, f = decoder(G.decoder, feats)
            sig.append(s.reshape(M, -1, 1)); fea.append(f.reshape(M, d.shape[2], -1))
        return torch.stack(sig), torch.stack(fea)

    s0, f0 = evaluate(d0)
    _, _, w0 = march(f0, s0, d0, o["white_back"])
    u = torch.rand(B * M, Ni, generator=rng).to(D)
    d1 = importance(d0.reshape(B * M, N, 1), w0.reshape(B * M, N - 1, 1), u).reshape(B, M, Ni, 1)
    s1, f1 = evaluate(d1)
    d, order = torch.sort(torch.cat([d0, d1], 2), 2)
    s = torch.gather(torch.cat([s0, s1], 2), 2, order)
    f = torch.gather(torch.cat([f0, f1], 2), 2, order.expand(-1, -1, -1, f0.shape[-1]))
    feat, depth, w = march(f, s, d, o["white_back"])
    image = lambda v: v.permute(0, 2, 1).reshape(B, -1, R, R)
    return image(feat), image(depth), image(w.sum(2))


def superresolution(sr, rgb, x, ws):
    "EG3D's super-resolution: resize to the input resolution (antialiased bilinear), then the blocks on the last w."
    ws = ws[:, -1:].repeat(1, 3, 1)
    if x.shape[-1] != sr.input_resolution:
        size = (sr.input_resolution,) * 2
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=True)
    for i in range(sr.n_blocks):
        x, rgb = block(getattr(sr, f"block{i}"), x, rgb, ws, "none")
    return rgb


def generator_stages(G, z, c, R, seed=0):
    "Every stage of EG3D's forward pass in float64: ws, planes, decoder features, raw image, depth, image."
    ws = mapping(G.backbone.mapping, z, c)
    pl = planes(G, ws)
    feat, depth, opacity = render(G, pl, c, R, torch.Generator().manual_seed(seed))
    image = superresolution(G.superresolution, feat[:, :3], feat, ws)
    return {"ws": ws, "planes": pl, "feature_image": feat, "image_raw": feat[:, :3], "image_depth": depth,
            "weights_sum": opacity, "image": image}


def relative(a, b):
    "max |a − b| / max |b| (finite entries)."
    a, b = a.to(D), b.to(D)
    ok = torch.isfinite(b)
    return ((a - b)[ok].abs().max() / b[ok].abs().max().clamp_min(1e-30)).item()


def layer_table(G, ws, seed=0, size=8):
    "Each layer type of `G`, on random inputs, against this file: (layer, relative max difference)."
    g = torch.Generator().manual_seed(seed)
    rows = []
    for name, m in G.named_modules():
        kind = type(m).__name__
        if kind not in ("SynthesisLayer", "ToRGBLayer"):
            continue
        n_in = m.weight.shape[1]
        x = torch.randn(1, n_in, size, size, generator=g)
        w = ws[:1, 0]
        with torch.no_grad():
            if kind == "SynthesisLayer":
                ours = m(x, w, "none")
                ref = modconv(x.to(D), m.weight, dense(m.affine, w.to(D)), up=m.up, f=m.resample_filter)
                ref = bias_act(ref, m.bias, True, m.conv_clamp)
            else:
                ours, ref = m(x, w), torgb(m, x.to(D), w.to(D))
        rows.append((name, relative(ours, ref)))
    return rows


def randomise(G, seed=0):
    "Fresh EG3D-style weights have zero biases and noise strengths: give them values, so every path counts."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, v in G.named_parameters():
            if "noise_strength" in k:
                v.fill_(0.1)
            elif k.endswith(".bias") and "mapping" not in k:
                v.copy_(torch.randn(v.shape, generator=g) * 0.1)
    return G
