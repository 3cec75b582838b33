"""The packaged product catalogue and its loader."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ordering.catalog import Catalog, CatalogError, UnknownOffering


def minimal_catalog_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": "1.0.0",
        "postcodeFormats": {"DE": "^[0-9]{5}$"},
        "productOfferings": [
            {
                "id": "PO-A",
                "name": "A",
                "version": "1.0",
                "lifecycleStatus": "Launched",
                "allowedActions": ["add"],
                "requiresPlace": False,
                "prices": [
                    {
                        "id": "POP-A",
                        "name": "A monthly",
                        "priceType": "recurring",
                        "recurringChargePeriod": "month",
                        "price": {
                            "taxIncludedAmount": {"unit": "EUR", "value": 12.1},
                            "dutyFreeAmount": {"unit": "EUR", "value": 10},
                            "taxRate": 21,
                        },
                    }
                ],
                "characteristics": [],
            }
        ],
    }
    data.update(overrides)
    return data


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def with_offering_change(**changes: Any) -> dict[str, Any]:
    data = minimal_catalog_data()
    data["productOfferings"][0].update(changes)
    return data


class TestLoad:
    def test_default_is_the_packaged_catalogue(self) -> None:
        catalog = Catalog.load()

        assert catalog.version == "2026.11.1"
        assert "PO-FIBRE-500" in catalog

    def test_from_path(self, tmp_path: Path) -> None:
        path = tmp_path / "catalog.json"
        path.write_text(json.dumps(minimal_catalog_data(version="9.9.9")))

        catalog = Catalog.load(path)

        assert catalog.version == "9.9.9"
        assert list(catalog.offerings) == ["PO-A"]

    def test_amounts_are_exact_decimals(self, tmp_path: Path) -> None:
        path = tmp_path / "catalog.json"
        path.write_text(json.dumps(minimal_catalog_data()))

        price = Catalog.load(path).offering("PO-A").prices[0]

        assert price.tax_included_amount == Decimal("12.1")
        assert price.duty_free_amount == Decimal("10")
        assert price.tax_rate == Decimal("21")


class TestPackagedCatalogue:
    """Invariants of the data file the service ships with."""

    def test_has_between_five_and_ten_offerings(self, catalog: Catalog) -> None:
        assert 5 <= len(catalog.offerings) <= 10

    def test_tax_included_is_duty_free_plus_tax(self, catalog: Catalog) -> None:
        for offering in catalog.offerings.values():
            for price in offering.prices:
                expected = price.duty_free_amount * (1 + price.tax_rate / 100)
                assert price.tax_included_amount == expected, price.id

    def test_price_ids_are_unique(self, catalog: Catalog) -> None:
        ids = [p.id for o in catalog.offerings.values() for p in o.prices]

        assert len(ids) == len(set(ids))

    def test_fibre_needs_a_place_and_a_speed(self, catalog: Catalog) -> None:
        fibre = catalog.offering("PO-FIBRE-500")
        speed = fibre.characteristic("downloadSpeed")

        assert fibre.requires_place
        assert speed is not None
        assert speed.required
        assert speed.allowed_values is not None
        assert "500Mbps" in speed.allowed_values
        assert {p.price_type for p in fibre.prices} == {"recurring", "oneTime"}

    def test_router_is_a_one_off_purchase(self, catalog: Catalog) -> None:
        router = catalog.offering("PO-ROUTER-WIFI6")

        assert [p.price_type for p in router.prices] == ["oneTime"]
        assert not router.has_recurring_price

    def test_sim_only_port_in_number_is_e164(self, catalog: Catalog) -> None:
        spec = catalog.offering("PO-MOBILE-SIMO-20GB").characteristic("portInMsisdn")

        assert spec is not None
        assert spec.pattern is not None
        assert not spec.required
        assert spec.pattern.fullmatch("+447700900123")
        assert not spec.pattern.fullmatch("07700900123")

    def test_tv_addon_requires_fibre(self, catalog: Catalog) -> None:
        assert catalog.offering("PO-TV-ADDON").requires_one_of == {
            "PO-FIBRE-100",
            "PO-FIBRE-500",
            "PO-FIBRE-1000",
        }

    def test_retired_offering_is_not_orderable(self, catalog: Catalog) -> None:
        adsl = catalog.offering("PO-ADSL-20")

        assert not adsl.is_orderable
        assert "add" not in adsl.allowed_actions

    @pytest.mark.parametrize(
        ("country", "postcode"),
        [
            ("GB", "SW1A 1AA"),
            ("GB", "M1 1AE"),
            ("NL", "1234 AB"),
            ("DE", "10115"),
            ("FR", "75008"),
            ("US", "94105"),
            ("US", "94105-1234"),
        ],
    )
    def test_valid_postcodes(self, catalog: Catalog, country: str, postcode: str) -> None:
        pattern = catalog.postcode_pattern(country)

        assert pattern is not None
        assert pattern.fullmatch(postcode)

    @pytest.mark.parametrize(
        ("country", "postcode"),
        [
            ("GB", "SW1A1AA"),
            ("NL", "0123 AB"),
            ("NL", "1234AB"),
            ("DE", "1011"),
            ("FR", "750080"),
            ("US", "9410"),
        ],
    )
    def test_invalid_postcodes(self, catalog: Catalog, country: str, postcode: str) -> None:
        pattern = catalog.postcode_pattern(country)

        assert pattern is not None
        assert not pattern.fullmatch(postcode)


class TestOffering:
    def test_known_id(self) -> None:
        catalog = Catalog.from_dict(minimal_catalog_data())

        assert catalog.offering("PO-A").name == "A"

    def test_unknown_id_raises(self) -> None:
        catalog = Catalog.from_dict(minimal_catalog_data())

        with pytest.raises(UnknownOffering) as exc_info:
            catalog.offering("PO-NOPE")

        assert exc_info.value.offering_id == "PO-NOPE"
        assert isinstance(exc_info.value, KeyError)


class TestFind:
    def test_unknown_id_is_none(self) -> None:
        assert Catalog.from_dict(minimal_catalog_data()).find("PO-NOPE") is None


class TestPostcodePattern:
    def test_unserved_country_is_none(self) -> None:
        assert Catalog.from_dict(minimal_catalog_data()).postcode_pattern("BE") is None


class TestFromDict:
    def test_missing_version(self) -> None:
        data = minimal_catalog_data()
        del data["version"]

        with pytest.raises(CatalogError, match="version"):
            Catalog.from_dict(data)

    def test_duplicate_offering(self) -> None:
        data = minimal_catalog_data()
        data["productOfferings"].append(copy.deepcopy(data["productOfferings"][0]))

        with pytest.raises(CatalogError, match="duplicate"):
            Catalog.from_dict(data)

    def test_unknown_action(self) -> None:
        with pytest.raises(CatalogError, match="allowedActions"):
            Catalog.from_dict(with_offering_change(allowedActions=["add", "upgrade"]))

    def test_unknown_price_type(self) -> None:
        data = minimal_catalog_data()
        data["productOfferings"][0]["prices"][0]["priceType"] = "usage"

        with pytest.raises(CatalogError, match="priceType"):
            Catalog.from_dict(data)

    def test_recurring_price_needs_a_period(self) -> None:
        data = minimal_catalog_data()
        del data["productOfferings"][0]["prices"][0]["recurringChargePeriod"]

        with pytest.raises(CatalogError, match="recurringChargePeriod"):
            Catalog.from_dict(data)

    def test_currencies_must_match(self) -> None:
        data = minimal_catalog_data()
        data["productOfferings"][0]["prices"][0]["price"]["dutyFreeAmount"]["unit"] = "GBP"

        with pytest.raises(CatalogError, match="currency"):
            Catalog.from_dict(data)

    def test_amount_must_be_a_number(self) -> None:
        data = minimal_catalog_data()
        data["productOfferings"][0]["prices"][0]["price"]["dutyFreeAmount"]["value"] = True

        with pytest.raises(CatalogError, match="not a number"):
            Catalog.from_dict(data)

    def test_invalid_characteristic_pattern(self) -> None:
        data = with_offering_change(characteristics=[{"name": "x", "valueType": "string", "pattern": "("}])

        with pytest.raises(CatalogError, match="invalid pattern"):
            Catalog.from_dict(data)

    def test_unknown_value_type(self) -> None:
        data = with_offering_change(characteristics=[{"name": "x", "valueType": "date"}])

        with pytest.raises(CatalogError, match="valueType"):
            Catalog.from_dict(data)

    def test_requires_unknown_offering(self) -> None:
        with pytest.raises(CatalogError, match="requiresOneOf"):
            Catalog.from_dict(with_offering_change(requiresOneOf=["PO-GHOST"]))

    def test_invalid_postcode_format(self) -> None:
        with pytest.raises(CatalogError, match=r"postcodeFormats\.XX"):
            Catalog.from_dict(minimal_catalog_data(postcodeFormats={"XX": "[unclosed"}))
