"""Real Japanese sites: coordinates, altitude, climate normals and the grid zone they belong to.

Monthly mean temperatures are rounded JMA 1991-2020 normals. `sunny_bias` shifts the daily
sky-state odds: the Pacific side has sunny, dry winters; the Sea of Japan side cloudy, snowy ones.
"""

from __future__ import annotations

from dataclasses import dataclass

TIMEZONE = "Asia/Tokyo"


@dataclass(frozen=True)
class Site:
    code: str
    name: str
    latitude: float
    longitude: float
    altitude_m: float
    zone: str  # grid zone: the general transmission & distribution company's area
    monthly_mean_c: tuple[float, ...]  # Jan..Dec
    diurnal_range_c: float
    winter_sunny: bool  # True on the Pacific side (clear winters), False on the Sea of Japan side

    def __post_init__(self) -> None:
        if len(self.monthly_mean_c) != 12:
            raise ValueError(f"site {self.code}: need 12 monthly temperatures")


SITES: dict[str, Site] = {
    s.code: s
    for s in (
        Site(
            "TKY",
            "Tokyo",
            35.6895,
            139.6917,
            40,
            "TEPCO",
            (5.4, 6.1, 9.4, 14.3, 18.8, 21.9, 25.7, 26.9, 23.3, 18.0, 12.5, 7.7),
            7.0,
            True,
        ),
        Site(
            "OSA",
            "Osaka",
            34.6937,
            135.5023,
            20,
            "KANSAI",
            (6.2, 6.6, 9.9, 15.2, 20.0, 23.6, 27.5, 28.8, 25.0, 19.0, 13.6, 8.6),
            7.5,
            True,
        ),
        Site(
            "NGO",
            "Nagoya",
            35.1815,
            136.9066,
            50,
            "CHUBU",
            (4.8, 5.5, 9.2, 14.6, 19.4, 23.0, 26.9, 28.2, 24.5, 18.6, 12.6, 7.2),
            8.0,
            True,
        ),
        Site(
            "FUK",
            "Fukuoka",
            33.5904,
            130.4017,
            10,
            "KYUSHU",
            (6.9, 7.8, 10.8, 15.4, 19.9, 23.3, 27.4, 28.4, 24.7, 19.6, 14.2, 9.1),
            7.0,
            True,
        ),
        Site(
            "SDJ",
            "Sendai",
            38.2682,
            140.8694,
            40,
            "TOHOKU",
            (1.6, 2.2, 5.3, 10.4, 15.3, 18.9, 22.6, 24.4, 21.2, 15.7, 9.8, 4.5),
            7.5,
            True,
        ),
        Site(
            "KNZ",
            "Kanazawa",
            36.5613,
            136.6562,
            30,
            "HOKURIKU",
            (4.0, 4.2, 7.2, 12.4, 17.4, 21.4, 25.8, 27.3, 23.2, 17.6, 11.9, 6.8),
            7.0,
            False,
        ),
        Site(
            "SPK",
            "Sapporo",
            43.0618,
            141.3545,
            20,
            "HEPCO",
            (-3.2, -2.7, 1.1, 7.3, 13.0, 17.0, 21.1, 22.3, 18.6, 12.1, 5.2, -0.9),
            7.0,
            False,
        ),
    )
}


def site(code: str) -> Site:
    try:
        return SITES[code]
    except KeyError:
        raise KeyError(f"unknown site {code!r}; known: {', '.join(SITES)}") from None
