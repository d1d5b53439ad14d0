"""The dashboard's image grid: one picture that holds every image, each exactly, in its row-major cell."""

import numpy as np

from dashboard import figures


def _cells(fig, n, h, w):
    """The images back out of the grid's one trace, from its gutters: [n, h, w(, 3)]."""
    z = np.asarray(fig.data[0].z, float)
    cols = fig.layout.meta["cols"]
    row_starts = [r for r in range(z.shape[0]) if (r == 0 or _blank(z[r - 1])) and not _blank(z[r])]
    col_starts = [c for c in range(z.shape[1]) if (c == 0 or _blank(z[:, c - 1])) and not _blank(z[:, c])]
    return np.stack([z[row_starts[k // cols]:row_starts[k // cols] + h, col_starts[k % cols]:col_starts[k % cols] + w]
                     for k in range(n)])


def _blank(a):
    return bool(np.all(np.isnan(a))) if a.dtype.kind == "f" and np.isnan(a).any() else bool(np.all(a == 255))


def test_a_grey_grid_is_one_heatmap_with_every_image_in_its_cell():
    rng = np.random.default_rng(0)
    images = rng.uniform(0.1, 0.9, size=(7, 5, 4))  # [n, H, W], 7 images in rows of 3
    titles = [f"#{k}" for k in range(7)]
    fig = figures.image_grid(images, cols=3, titles=titles, row_labels=["a", "b", "c"], zmin=0, zmax=1)
    assert [t.type for t in fig.data] == ["heatmap"]
    assert fig.layout.meta == {"images": 7, "cols": 3, "rows": 3}
    np.testing.assert_array_equal(_cells(fig, 7, 5, 4), images)
    z = np.asarray(fig.data[0].z, float)
    assert np.isnan(z).sum() == z.size - images.size  # everything else is gutter, drawn blank
    texts = [a.text for a in fig.layout.annotations]
    assert texts == titles + ["a", "b", "c"]
    assert fig.layout.coloraxis.cmin == 0 and fig.layout.coloraxis.cmax == 1


def test_an_rgb_grid_is_one_image_scaled_to_bytes():
    images = np.zeros((2, 3, 3, 3))
    images[0, ..., 0] = 1.0  # red
    images[1, ..., 2] = 0.5  # half blue
    fig = figures.image_grid(images, cols=2)
    assert [t.type for t in fig.data] == ["image"] and fig.layout.meta["images"] == 2
    cells = _cells(fig, 2, 3, 3)
    assert np.all(cells[0, ..., 0] == 255) and np.all(cells[0, ..., 1:] == 0)
    assert np.all(cells[1, ..., 2] == 127) and np.all(cells[1, ..., :2] == 0)
