"""Shared fixtures' data for the point readers' tests (events and sites)."""

from __future__ import annotations

import geopandas as gpd
from shapely.geometry import box


def demoland_areas() -> gpd.GeoDataFrame:
    """Two 1x1 degree areas on the equator (XD01 west, XD02 east) inside their country (XDM).

    The country polygon covers both areas: points go to the finest level only.
    """
    return gpd.GeoDataFrame(
        {
            "pcode": ["XDM", "XD01", "XD02"],
            "name": ["Demoland", "West", "East"],
            "admin_level": [0, 1, 1],
            "parent_pcode": [None, "XDM", "XDM"],
            "country_iso3": ["XDM", "XDM", "XDM"],
        },
        geometry=[box(0, 0, 2, 1), box(0, 0, 1, 1), box(1, 0, 2, 1)],
        crs="EPSG:4326",
    )
