"""nn_interpretability.plot: heatmaps, images, overlays, grids and the statistics plots."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from nn_interpretability import plot  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")
    assert plt.get_fignums() == []


def _ax():
    return plt.subplots()[1]


MAP_SHAPES = [(28, 28), (1, 28, 28), (3, 28, 28), (1, 3, 28, 28)]


@pytest.mark.parametrize("shape", MAP_SHAPES)
@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_heatmap_accepts_shapes_and_backends(shape, backend):
    data = torch.randn(shape) if backend == "torch" else np.random.default_rng(0).normal(size=shape)
    im = plot.heatmap(data, ax=_ax(), title="t", colorbar=True)
    assert im.get_array().shape == (28, 28)
    assert im.axes.get_title() == "t"
    assert len(im.axes.figure.axes) == 2  # the map and its colorbar


def test_heatmap_sums_channels_and_uses_symmetric_percentile_limits():
    attribution = torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(0))
    im = plot.heatmap(attribution, ax=_ax(), percentile=90)
    expected = attribution.sum(0).numpy()
    np.testing.assert_allclose(im.get_array(), expected, rtol=1e-5, atol=1e-6)
    vmin, vmax = im.get_clim()
    assert vmin == -vmax
    assert vmax == pytest.approx(np.percentile(np.abs(expected), 90))


def test_heatmap_limit_is_robust_to_an_outlier():
    m = np.ones((20, 20))
    m[0, 0] = 1000.0
    vmin, vmax = plot.heatmap(m, ax=_ax(), percentile=99).get_clim()
    assert vmax == pytest.approx(1.0)
    assert vmin == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("reduce", "expected"),
    [("sum", [[-1.0]]), ("abs_sum", [[5.0]]), ("max_abs", [[3.0]])],
)
def test_channel_reductions(reduce, expected):
    attribution = np.array([2.0, -3.0]).reshape(2, 1, 1)
    np.testing.assert_allclose(plot.to_map(attribution, reduce), expected)


def test_unknown_reduction_and_batches_are_rejected():
    with pytest.raises(ValueError, match="reduce"):
        plot.to_map(np.zeros((2, 4, 4)), "mean")
    with pytest.raises(ValueError, match="grid"):
        plot.heatmap(np.zeros((2, 1, 4, 4)), ax=_ax())


@pytest.mark.parametrize("symmetric", [True, False])
def test_zero_map_has_finite_limits(symmetric):
    im = plot.heatmap(torch.zeros(1, 8, 8), ax=_ax(), symmetric=symmetric)
    vmin, vmax = im.get_clim()
    assert np.isfinite([vmin, vmax]).all() and vmin < vmax
    assert not np.isnan(np.asarray(im.get_array())).any()
    im.axes.figure.canvas.draw()


def test_sparse_map_falls_back_to_its_maximum():
    m = np.zeros((30, 30))  # one non-zero pixel: the 99.5th percentile of |map| is 0
    m[3, 3] = -2.0
    assert plot.heatmap(m, ax=_ax()).get_clim() == (-2.0, 2.0)


@pytest.mark.parametrize(
    ("shape", "shown"),
    [((28, 28), (28, 28)), ((1, 28, 28), (28, 28)), ((3, 28, 28), (28, 28, 3)), ((28, 28, 3), (28, 28, 3))],
)
@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_image_shapes_and_clipping(shape, shown, backend):
    data = np.linspace(-1, 2, int(np.prod(shape))).reshape(shape)
    if backend == "torch":
        data = torch.from_numpy(data)
    im = plot.image(data, ax=_ax(), title="x")
    shown_data = np.asarray(im.get_array())
    assert shown_data.shape == shown
    assert shown_data.min() == 0.0 and shown_data.max() == 1.0
    assert im.get_cmap().name == "gray" or len(shown) == 3


def test_image_rescale():
    im = plot.image(np.array([[2.0, 4.0], [6.0, 10.0]]), ax=_ax(), rescale=True)
    np.testing.assert_allclose(im.get_array(), [[0.0, 0.25], [0.5, 1.0]])


@pytest.mark.parametrize("backend", ["torch", "numpy"])
@pytest.mark.parametrize("map_size", [28, 7])
def test_overlay_draws_grey_image_under_transparent_heatmap(backend, map_size):
    rng = np.random.default_rng(1)
    img, attribution = rng.random((3, 28, 28)), rng.normal(size=(1, map_size, map_size))
    attribution[0, 0, 0] = 0.0
    if backend == "torch":
        img, attribution = torch.from_numpy(img), torch.from_numpy(attribution)
    ax = _ax()
    top = plot.overlay(img, attribution, ax=ax, alpha=0.5)
    bottom, layer = ax.get_images()
    assert layer is top
    assert np.asarray(bottom.get_array()).shape == (28, 28)
    assert top.get_extent() == bottom.get_extent()
    alpha = np.asarray(top.get_alpha())
    assert alpha.shape == (map_size, map_size)
    assert alpha[0, 0] == 0.0 and alpha.max() <= 0.5
    ax.figure.canvas.draw()


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_grid_from_rows_by_cols_tensor(backend):
    maps = torch.randn(2, 3, 1, 8, 8)
    if backend == "numpy":
        maps = maps.numpy()
    titles = [[f"{r}{c}" for c in range(3)] for r in range(2)]
    fig = plot.grid(maps, row_labels=["a", "b"], col_labels=["x", "y", "z"], titles=titles, colorbar=False)
    assert len(fig.axes) == 6
    assert [ax.get_ylabel() for ax in fig.axes[::3]] == ["a", "b"]
    col_labels = [t.get_text() for ax in fig.axes[:3] for t in ax.texts]
    assert col_labels == ["x", "y", "z"]
    assert [ax.get_title() for ax in fig.axes] == ["00", "01", "02", "10", "11", "12"]
    assert all(not ax.get_xticks().size and not ax.get_yticks().size for ax in fig.axes)
    fig.canvas.draw()


def test_grid_flat_batch_with_ncols_leaves_spare_cells_empty():
    fig = plot.grid(np.random.default_rng(0).random((5, 1, 8, 8)), kind="image", ncols=3, titles=list("abcde"))
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:5]] == list("abcde")
    assert not fig.axes[5].axison and not fig.axes[5].images


def test_grid_list_of_lists_and_overlay_with_one_image_per_row():
    images = torch.rand(2, 1, 8, 8)
    maps = [[torch.randn(1, 8, 8), np.zeros((8, 8))], [torch.randn(8, 8), torch.randn(3, 8, 8)]]
    fig = plot.grid(maps, kind="overlay", images=images, col_labels=["m1", "m2"])
    assert len(fig.axes) == 4 + 4  # the cells, then one colorbar per signed overlay
    assert all(len(ax.get_images()) == 2 for ax in fig.axes[:4])


def test_grid_with_one_kind_per_row():
    digits = torch.rand(3, 1, 8, 8)
    maps = torch.randn(3, 1, 8, 8)
    fig = plot.grid([list(digits), list(maps)], kind=["image", "heatmap"], row_labels=["input", "map"])
    image_cmaps = [ax.get_images()[0].get_cmap().name for ax in fig.axes[:6]]
    assert image_cmaps == ["gray"] * 3 + ["bwr"] * 3
    with pytest.raises(ValueError, match="2 kinds for 3 rows"):
        plot.grid(torch.randn(3, 2, 4, 4), kind=["image", "heatmap"])


def test_grid_validates_its_input():
    maps = torch.randn(2, 2, 4, 4)
    with pytest.raises(ValueError, match="row_labels"):
        plot.grid(maps, row_labels=["only one"])
    with pytest.raises(ValueError, match="images"):
        plot.grid(maps, kind="overlay")
    with pytest.raises(ValueError, match="titles"):
        plot.grid(maps, titles=["a", "b", "c"])
    with pytest.raises(ValueError, match="kind"):
        plot.grid(maps, kind="contour")


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_scatter(backend):
    x = np.arange(6.0)
    y = x[::-1].copy()
    if backend == "torch":
        x, y = torch.from_numpy(x), torch.from_numpy(y)
    ax = plot.scatter(x, y, ax=_ax(), hue=["a", "b"] * 3, identity=True, xlabel="x", ylabel="y", title="t")
    assert len(ax.collections) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    assert ax.get_xlabel() == "x" and ax.get_title() == "t"


def test_correlation_matrix_annotations():
    matrix = torch.tensor([[1.0, 0.834], [0.834, 1.0]])
    std = np.array([[0.0, 0.051], [0.051, 0.0]])
    ax = plot.correlation_matrix(matrix, ["IG", "LRP"], std=std, ax=_ax())
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["1.00\n± 0.00", "0.83\n± 0.05", "0.83\n± 0.05", "1.00\n± 0.00"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["IG", "LRP"]
    plain = plot.correlation_matrix(matrix.numpy(), ["IG", "LRP"], ax=_ax())
    assert [t.get_text() for t in plain.texts] == ["1.00", "0.83", "0.83", "1.00"]
    with pytest.raises(ValueError, match="square"):
        plot.correlation_matrix(np.zeros((2, 3)), ["a", "b"], ax=_ax())


def test_pass_scatter_draws_every_pass_of_each_class_reproducibly():
    values = torch.randn(50, 4, 10)
    fig, (a, b) = plt.subplots(1, 2)
    plot.pass_scatter(values, classes=[1, 7], positions=[0, 30, 60, 90], ax=a)
    plot.pass_scatter(values, classes=[1, 7], positions=[0, 30, 60, 90], ax=b)
    assert [c.get_label() for c in a.collections] == ["class 1", "class 7"]
    points = a.collections[1].get_offsets()
    assert points.shape == (200, 2)
    np.testing.assert_allclose(points[:, 1], values[:, :, 7].reshape(-1).numpy(), rtol=1e-6)
    # Jitter stays within the spacing around each position and is seeded.
    assert np.abs(points[:, 0] - np.tile([0, 30, 60, 90], 50)).max() <= 0.25 * 30 / 2
    np.testing.assert_array_equal(points, b.collections[1].get_offsets())
    plt.close(fig)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"values": torch.zeros(5, 10), "classes": [1]}, r"\(passes, N, C\)"),
        ({"values": torch.zeros(2, 3, 10), "classes": [10]}, "out of range"),
        ({"values": torch.zeros(2, 3, 10), "classes": [1], "positions": [0, 1]}, "one value per input"),
    ],
)
def test_pass_scatter_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot.pass_scatter(**kwargs)


def test_series_lines_draws_one_line_per_quantity():
    fig, ax = plt.subplots()
    values = torch.rand(6, 3)
    plot.series_lines(values, ["p(1)", "p(4)", "u"], positions=range(0, 60, 10), ax=ax)
    assert [line.get_label() for line in ax.lines] == ["p(1)", "p(4)", "u"]
    np.testing.assert_allclose(ax.lines[2].get_ydata(), values[:, 2].numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="3 labels"):
        plot.series_lines(torch.rand(6, 2), ["a", "b", "c"])
    plt.close(fig)


def test_grid_takes_one_kind_per_cell_and_a_shared_row_scale():
    images = torch.rand(2, 1, 8, 8)
    maps = torch.randn(2, 3, 8, 8)
    maps[0, 1] *= 10
    rows = [[images[r], *maps[r]] for r in range(2)]
    fig = plot.grid(rows, kind=[["image", "heatmap", "heatmap", "heatmap"]] * 2, scale="row")
    axes = np.array(fig.axes[:8]).reshape(2, 4)
    limits = [[ax.images[0].get_clim()[1] for ax in row[1:]] for row in axes]
    assert all(len(set(row)) == 1 for row in limits)
    assert limits[0][0] > 5 * limits[1][0]
    assert axes[0, 0].images[0].get_cmap().name != "bwr"
    separate = plot.grid(rows, kind=[["image", "heatmap", "heatmap", "heatmap"]] * 2)
    assert len({ax.images[0].get_clim()[1] for ax in np.array(separate.axes[:8]).reshape(2, 4)[0, 1:]}) == 3
    with pytest.raises(ValueError, match="2 kinds for a row of 4 cells"):
        plot.grid(rows, kind=[["image", "heatmap"]] * 2)


def _cells_and_colorbars(fig, n_cells):
    return fig.axes[:n_cells], fig.axes[n_cells:]


def _three_rows():
    """An input and three signed maps per row, the second row ten times larger."""
    g = torch.Generator().manual_seed(3)
    images, maps = torch.rand(3, 1, 8, 8, generator=g), torch.randn(3, 3, 8, 8, generator=g)
    maps[1] *= 10
    return [[images[r], *maps[r]] for r in range(3)], [["image", "heatmap", "heatmap", "heatmap"]] * 3


def test_heatmap_gets_a_colorbar_when_signed_and_a_footnote():
    im = plot.heatmap(torch.randn(8, 8), ax=_ax(), note="Σ R = 0.998 · f(x)")
    assert len(im.axes.figure.axes) == 2 and im.axes.get_xlabel() == "Σ R = 0.998 · f(x)"
    unsigned = plot.heatmap(torch.rand(8, 8), ax=_ax(), symmetric=False)
    assert len(unsigned.axes.figure.axes) == 1


@pytest.mark.parametrize("scale, colorbars", [("panel", 9), ("row", 3), ("figure", 1)])
def test_grid_scale_shares_symmetric_limits_and_draws_one_colorbar_per_scale(scale, colorbars):
    rows, kinds = _three_rows()
    fig = plot.grid(rows, kind=kinds, scale=scale)
    cells, bars = _cells_and_colorbars(fig, 12)
    assert len(bars) == colorbars
    limits = np.array([[ax.images[0].get_clim() for ax in cells[4 * r + 1 : 4 * r + 4]] for r in range(3)])
    np.testing.assert_array_equal(limits[..., 0], -limits[..., 1])  # symmetric around 0
    own = np.array([[plot.color_limit(plot.to_map(m)) for m in row[1:]] for row in rows])
    if scale == "panel":
        np.testing.assert_allclose(limits[..., 1], own)
    elif scale == "row":
        np.testing.assert_allclose(limits[..., 1], own.max(1, keepdims=True).repeat(3, 1))
    else:
        np.testing.assert_allclose(limits[..., 1], np.full((3, 3), own.max()))
    # each colorbar spans the limits of the maps it stands for
    shown = {"panel": own.reshape(-1), "row": own.max(1), "figure": [own.max()]}[scale]
    np.testing.assert_allclose([bar.get_ylim()[1] for bar in bars], shown)
    assert all(ax.images[0].get_cmap().name == "gray" for ax in cells[::4])  # inputs keep their own scale


def test_grid_shared_scale_of_unsigned_maps_spans_all_ranges():
    maps = np.stack([np.linspace(0, 1, 64).reshape(8, 8), np.linspace(2, 5, 64).reshape(8, 8)])
    fig = plot.grid(maps[None], scale="figure", symmetric=False, percentile=100)
    cells, bars = _cells_and_colorbars(fig, 2)
    assert not bars  # unsigned maps: no colorbar unless asked
    assert [ax.images[0].get_clim() for ax in cells] == [(0.0, 5.0)] * 2
    forced = plot.grid(maps[None], scale="figure", symmetric=False, colorbar=True)
    assert len(forced.axes) == 3


def test_grid_footnotes_under_cells_and_width_cap():
    rows, kinds = _three_rows()
    notes = [[None, "a", "b", "c"], ["d", None, "e", "f"], ["g", "h", "i", None]]
    fig = plot.grid(rows, kind=kinds, notes=notes, colorbar=False)
    assert [ax.get_xlabel() for ax in fig.axes] == [n or "" for row in notes for n in row]
    with pytest.raises(ValueError, match="notes"):
        plot.grid(rows, kind=kinds, notes=["too few"])
    wide = plot.grid(torch.randn(2, 11, 8, 8), figsize=(22, 7.5))
    np.testing.assert_allclose(wide.get_size_inches(), [plot.grids.MAX_WIDTH, 7.5 * plot.grids.MAX_WIDTH / 22])
    titled = plot.grid(torch.randn(2, 11, 8, 8), figsize=(22, 7.5), titles=[["t"] * 11] * 2)
    assert titled.get_size_inches()[1] > wide.get_size_inches()[1]  # room kept for the titles
    np.testing.assert_allclose(plot.grid(torch.randn(1, 11, 8, 8), max_width=None).get_size_inches(), [11 * 1.8, 1.8])
    with pytest.raises(ValueError, match="scale"):
        plot.grid(rows, kind=kinds, scale="column")


@pytest.mark.parametrize("maker", ["subplots", "figure"])
def test_wide_figures_are_capped_at_the_grid_width_keeping_their_aspect(maker):
    make = getattr(plot, maker)
    shape = {"subplots": dict(nrows=1, ncols=3)}.get(maker, {})
    fig = make(figsize=(15, 5), **shape)
    fig = fig[0] if isinstance(fig, tuple) else fig
    np.testing.assert_allclose(fig.get_size_inches(), [plot.grids.MAX_WIDTH, 5 * plot.grids.MAX_WIDTH / 15])
    narrow = make(figsize=(6.5, 5.5), **shape)
    np.testing.assert_allclose((narrow[0] if isinstance(narrow, tuple) else narrow).get_size_inches(), [6.5, 5.5])
    kept = make(figsize=(15, 5), max_width=None, **shape)
    np.testing.assert_allclose((kept[0] if isinstance(kept, tuple) else kept).get_size_inches(), [15, 5])
    with pytest.raises(ValueError, match="figsize must be two positive numbers"):
        make(figsize=(0, 5), **shape)


def test_subplots_passes_matplotlibs_arguments_and_returns_its_axes():
    fig, axes = plot.subplots(2, 3, figsize=(13, 5), sharey=True, gridspec_kw={"width_ratios": [1, 2, 1]}, layout="constrained")
    assert axes.shape == (2, 3) and fig.get_layout_engine() is not None
    assert axes[0, 0].get_shared_y_axes().joined(axes[0, 0], axes[1, 2])
    fig.canvas.draw()
    widths = [ax.get_position().width for ax in axes[0]]
    assert widths[1] > 1.5 * widths[0]
    _, ax = plot.subplots(figsize=(6.5, 5.5))
    assert not isinstance(ax, np.ndarray)
    np.testing.assert_allclose(plot.subplots()[0].get_size_inches(), plt.rcParams["figure.figsize"])


def test_grid_row_labels_can_be_horizontal():
    maps = torch.randn(2, 3, 8, 8)
    vertical = plot.grid(maps, row_labels=["a long label", "b"], colorbar=False, row_label_rotation=90)
    assert vertical.axes[0].yaxis.label.get_rotation() == 90
    # by default: upright where the labels fit in a row's height, else horizontal
    assert plot.grid(maps, row_labels=["input", "b"], colorbar=False).axes[0].yaxis.label.get_rotation() == 90
    assert plot.grid(maps, row_labels=["a much longer label", "b"], colorbar=False).axes[0].yaxis.label.get_rotation() == 0
    tall = plot.grid(maps, row_labels=["a much longer label", "b"], colorbar=False, figsize=(6, 8))
    assert tall.axes[0].yaxis.label.get_rotation() == 90
    fig = plot.grid(maps, row_labels=["a long label", "b"], colorbar=False, row_label_rotation=0)
    label = fig.axes[0].yaxis.label
    assert label.get_text() == "a long label" and label.get_rotation() == 0 and label.get_ha() == "right"
    fig.canvas.draw()
    # the horizontal label ends left of its row's axes
    renderer = fig.canvas.get_renderer()
    assert label.get_window_extent(renderer).x1 <= fig.axes[0].get_window_extent(renderer).x0


@pytest.mark.parametrize("symmetric", [True, False])
def test_grid_shared_scale_ignores_maps_without_values(symmetric):
    # An all-zero signed map (a unit inactive on that input) or one without finite values falls back
    # on a limit of 1 of its own; in a shared scale that fallback must not drown the other maps.
    g = torch.Generator().manual_seed(5)
    maps = 0.05 * torch.rand(1, 4, 8, 8, generator=g)
    maps[0, 1] = 0.0
    maps[0, 2] = float("nan")
    expected = [plot.color_limit(plot.to_map(m)) for m in maps[0, [0, 3]]]
    for scale in ("row", "figure"):
        fig = plot.grid(maps, scale=scale, symmetric=symmetric)
        limits = [ax.images[0].get_clim() for ax in fig.axes[:4]]
        assert len(set(limits)) == 1, scale
        if symmetric:
            np.testing.assert_allclose(limits[0][1], max(expected))
        else:
            ranges = [plot.arrays.value_range(plot.to_map(m)) for m in maps[0, [0, 1, 3]]]  # zeros are values
            lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
            np.testing.assert_allclose(limits[0], (lo, hi))
    blank = plot.grid(torch.zeros(1, 2, 8, 8), scale="row")  # nothing to scale: the maps' own fallback
    assert [ax.images[0].get_clim() for ax in blank.axes[:2]] == [(-1.0, 1.0)] * 2


def test_grid_takes_one_scale_per_row():
    # inputs, then maps in one unit sharing a scale, then maps in units of their own; rows of
    # different lengths leave their spare cells empty
    g = torch.Generator().manual_seed(7)
    same_units = [torch.randn(8, 16, generator=g) * f for f in (1.0, 2.0, 3.0)]
    own_units = [torch.randn(8, 16, generator=g) * f for f in (0.01, 100.0)]
    rows = [[torch.rand(1, 8, 16, generator=g)] * 2, same_units, own_units]
    fig = plot.grid(rows, kind=["image", "heatmap", "heatmap"], scale=["panel", "row", "panel"], titles=list("abcdefg"))
    cells, bars = _cells_and_colorbars(fig, 9)
    assert len(bars) == 1 + 2  # one for the shared row, one for each map of the last
    assert not cells[2].axison and not cells[8].axison
    shared = max(plot.color_limit(plot.to_map(m)) for m in same_units)
    np.testing.assert_allclose([ax.images[0].get_clim()[1] for ax in cells[3:6]], shared)
    np.testing.assert_allclose([ax.images[0].get_clim()[1] for ax in cells[6:8]],
                               [plot.color_limit(plot.to_map(m)) for m in own_units])
    # rows marked "figure" share one scale and one colorbar among themselves
    both = plot.grid([same_units, own_units + [same_units[0]]], scale=["figure", "figure"])
    cells, bars = _cells_and_colorbars(both, 6)
    assert len(bars) == 1 and len({ax.images[0].get_clim() for ax in cells}) == 1
    with pytest.raises(ValueError, match="2 scales for 3 rows"):
        plot.grid(rows, kind=["image", "heatmap", "heatmap"], scale=["row", "row"])
    with pytest.raises(ValueError, match="scale must be one of"):
        plot.grid(rows, kind=["image", "heatmap", "heatmap"], scale=["row", "row", "column"])
