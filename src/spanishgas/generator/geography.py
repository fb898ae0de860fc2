"""Spanish provinces (INE codes), their autonomous community and a customer weight.

Weights follow population roughly; the high-competition flag marks the large urban markets where rival
retailers are most active. Together they give about 30 % of customers in high-competition provinces, as
in the utility's delivery.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Province:
    """One province of the customer base."""

    code: int
    name: str
    region: str
    weight: float
    high_competition: bool


PROVINCES: tuple[Province, ...] = (
    Province(1, "Araba/Alava", "pais_vasco", 0.7, False),
    Province(2, "Albacete", "castilla_la_mancha", 0.8, False),
    Province(3, "Alicante", "comunidad_valenciana", 4.0, False),
    Province(4, "Almeria", "andalucia", 1.5, False),
    Province(5, "Avila", "castilla_y_leon", 0.3, False),
    Province(6, "Badajoz", "extremadura", 1.4, False),
    Province(7, "Illes Balears", "illes_balears", 2.5, False),
    Province(8, "Barcelona", "cataluna", 8.5, True),
    Province(9, "Burgos", "castilla_y_leon", 0.7, False),
    Province(10, "Caceres", "extremadura", 0.8, False),
    Province(11, "Cadiz", "andalucia", 2.6, False),
    Province(12, "Castellon", "comunidad_valenciana", 1.2, False),
    Province(13, "Ciudad Real", "castilla_la_mancha", 1.0, False),
    Province(14, "Cordoba", "andalucia", 1.6, False),
    Province(15, "A Coruna", "galicia", 2.4, False),
    Province(16, "Cuenca", "castilla_la_mancha", 0.4, False),
    Province(17, "Girona", "cataluna", 1.6, False),
    Province(18, "Granada", "andalucia", 1.9, False),
    Province(19, "Guadalajara", "castilla_la_mancha", 0.6, False),
    Province(20, "Gipuzkoa", "pais_vasco", 1.5, False),
    Province(21, "Huelva", "andalucia", 1.1, False),
    Province(22, "Huesca", "aragon", 0.5, False),
    Province(23, "Jaen", "andalucia", 1.3, False),
    Province(24, "Leon", "castilla_y_leon", 1.0, False),
    Province(25, "Lleida", "cataluna", 0.9, False),
    Province(26, "La Rioja", "la_rioja", 0.7, False),
    Province(27, "Lugo", "galicia", 0.7, False),
    Province(28, "Madrid", "comunidad_de_madrid", 10.5, True),
    Province(29, "Malaga", "andalucia", 3.6, False),
    Province(30, "Murcia", "region_de_murcia", 3.2, False),
    Province(31, "Navarra", "navarra", 1.4, False),
    Province(32, "Ourense", "galicia", 0.6, False),
    Province(33, "Asturias", "asturias", 2.1, False),
    Province(34, "Palencia", "castilla_y_leon", 0.3, False),
    Province(35, "Las Palmas", "canarias", 2.3, False),
    Province(36, "Pontevedra", "galicia", 2.0, False),
    Province(37, "Salamanca", "castilla_y_leon", 0.7, False),
    Province(38, "Santa Cruz de Tenerife", "canarias", 2.2, False),
    Province(39, "Cantabria", "cantabria", 1.2, False),
    Province(40, "Segovia", "castilla_y_leon", 0.3, False),
    Province(41, "Sevilla", "andalucia", 4.1, True),
    Province(42, "Soria", "castilla_y_leon", 0.2, False),
    Province(43, "Tarragona", "cataluna", 1.7, False),
    Province(44, "Teruel", "aragon", 0.3, False),
    Province(45, "Toledo", "castilla_la_mancha", 1.5, False),
    Province(46, "Valencia", "comunidad_valenciana", 5.4, True),
    Province(47, "Valladolid", "castilla_y_leon", 1.1, False),
    Province(48, "Bizkaia", "pais_vasco", 2.4, False),
    Province(49, "Zamora", "castilla_y_leon", 0.3, False),
    Province(50, "Zaragoza", "aragon", 2.0, False),
    Province(51, "Ceuta", "ceuta", 0.2, False),
    Province(52, "Melilla", "melilla", 0.2, False),
)
