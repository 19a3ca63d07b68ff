"""The plotting module's layout promises, checked on the drawn figure (Agg renderer)."""
import numpy as np
import pytest

from genrl_lite import plotting


def _boxes(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    labels = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_title(loc="left")]
    return title, labels


@pytest.mark.parametrize("draw", ["video_strips", "video_rows"])
def test_a_filmstrip_title_sits_above_every_label_and_inside_the_figure(draw):
    clip = np.zeros((6, 64, 64, 3), np.uint8)
    rows = {f'"a prompt number {i}" without the aligner': clip for i in range(12)}
    title = "stickman: prompt -> aligner -> connector -> decoder (every 4th imagined frame), a long title"
    fig = getattr(plotting, draw)(rows, title=title)
    box, labels = _boxes(fig)
    height = fig.get_figheight() * fig.dpi
    assert box.y1 <= height + 1 and box.x0 >= -1 and box.x1 <= fig.get_figwidth() * fig.dpi + 1
    assert "\n" in fig._suptitle.get_text()                       # wrapped to the figure's width
    assert all(box.y0 >= label.y1 for label in labels), "the title covers a row label"
    # the title's room is added to the figure, not taken from the frames
    plain = getattr(plotting, draw)(rows)
    assert fig.get_figheight() > plain.get_figheight()
    plotting.close(fig)
    plotting.close(plain)


def test_a_score_matrix_names_its_scale_and_leaves_missing_entries_blank():
    scores = np.array([[0.8, np.nan], [0.1, 0.4]])
    fig = plotting.similarity_matrix(scores, ["a", "b"], ["x", "y"], label="normalized score")
    ax, bar = fig.axes
    assert sorted(t.get_text() for t in ax.texts) == ["0.10", "0.40", "0.80"]      # no "nan" drawn
    assert bar.get_ylabel() == "normalized score"
    assert plotting.similarity_matrix(np.eye(2), ["a", "b"], ["x", "y"]).axes[1].get_ylabel() == "cosine"
    plotting.close(fig)
