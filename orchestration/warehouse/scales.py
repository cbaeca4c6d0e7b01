"""Size knobs of the synthetic warehouse (``lxp-reports generate --scale``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    institutions: int
    users_per_institution: int
    storyboards_per_institution: int
    courses_per_institution: int
    schools_per_institution: int
    library_contents_per_institution: int
    story_views_per_user_month: float
    # One institution (the last id) gets this many users/storyboards so that its
    # storyboard usage report for the latest full month exceeds 1.1M rows (large only).
    big_institution_users: int = 0
    big_institution_storyboards: int = 0
    # Library contents of the big institution (the API listing benchmark wants 100k); 0 = as the others.
    big_institution_library_contents: int = 0


SCALES: dict[str, Scale] = {
    "tiny": Scale("tiny", 3, 40, 6, 8, 3, 30, 6),
    "small": Scale("small", 10, 300, 12, 20, 4, 200, 8),
    "demo": Scale("demo", 25, 1000, 20, 40, 6, 1000, 8),
    "large": Scale(
        "large",
        50,
        2000,
        20,
        40,
        6,
        1000,
        6,
        big_institution_users=60_000,
        big_institution_storyboards=40,
        big_institution_library_contents=100_000,
    ),
}
