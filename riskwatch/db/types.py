"""Column types that pick their implementation per database dialect."""

from __future__ import annotations

from typing import Any

import shapely
from geoalchemy2 import Geometry as PostGISGeometry
from geoalchemy2.elements import WKBElement
from geoalchemy2.shape import to_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import LargeBinary
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

SRID = 4326


class AreaGeometry(TypeDecorator[BaseGeometry]):
    """A (multi)polygon in EPSG:4326, read and written as a shapely geometry.

    PostgreSQL stores it as PostGIS ``geometry(MultiPolygon, 4326)``; SQLite as WKB bytes, so no
    SpatiaLite is needed (spatial work happens in geopandas, the database only keeps the shapes).
    """

    impl = LargeBinary
    cache_ok = True
    # Read by geoalchemy2's table events: the migration creates the GiST index itself.
    spatial_index = False

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # geoalchemy2's table events probe types with no dialect: answer "not PostGIS" then.
        if dialect is None:
            return LargeBinary()
        if dialect.name == "postgresql":
            # The spatial index is created by the migration, not by geoalchemy2's table events.
            return dialect.type_descriptor(
                PostGISGeometry(geometry_type="MULTIPOLYGON", srid=SRID, spatial_index=False)
            )
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: BaseGeometry | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        wkb = shapely.to_wkb(value)
        if dialect.name == "postgresql":
            return WKBElement(wkb, srid=SRID)
        return wkb

    def process_result_value(self, value: Any, dialect: Dialect) -> BaseGeometry | None:
        if value is None:
            return None
        if isinstance(value, WKBElement):
            return to_shape(value)
        if isinstance(value, str):  # hex EWKB, as some drivers return it
            return to_shape(WKBElement(value))
        return shapely.from_wkb(bytes(value))
