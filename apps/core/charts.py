"""What the inline SVG trend charts share: the plot area inside the margins, the line
through the points that have a value, and the first and last points for the date labels."""

from typing import ClassVar


class PlotArea:
    """Mixed into a chart dataclass with ``points`` (each with ``x``, ``y`` and ``tone``,
    "none" for a point without a value); the class sets its size and margins."""

    WIDTH: ClassVar[int]
    HEIGHT: ClassVar[int]
    LEFT: ClassVar[int]
    RIGHT: ClassVar[int]
    TOP: ClassVar[int]
    BOTTOM: ClassVar[int]

    @property
    def line(self) -> str:
        """The SVG polyline through the points that have a value."""
        return " ".join(f"{p.x},{p.y}" for p in self.points if p.tone != "none")

    @property
    def plot_left(self) -> int:
        return self.LEFT

    @property
    def plot_right(self) -> int:
        return self.WIDTH - self.RIGHT

    @property
    def plot_top(self) -> int:
        return self.TOP

    @property
    def plot_center(self) -> float:
        return (self.LEFT + self.WIDTH - self.RIGHT) / 2

    @property
    def plot_bottom(self) -> int:
        return self.HEIGHT - self.BOTTOM

    @property
    def label_y(self) -> int:
        return self.HEIGHT - 10

    @property
    def first(self):
        return self.points[0] if self.points else None

    @property
    def last(self):
        return self.points[-1] if self.points else None
