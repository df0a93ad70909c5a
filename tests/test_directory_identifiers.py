"""RPPS check digits and idNat consistency (psc.md §4)."""

import pytest

from psc_idp.directory.identifiers import (
    IdentifierError,
    check_id_nat,
    is_rpps,
    luhn_valid,
    make_id_nat,
    split_id_nat,
)

VALID_RPPS = ["10107592585", "10107592544", "99700218896", "99700245667", "99700366240",
              "99700075122"]


@pytest.mark.parametrize("rpps", VALID_RPPS)
def test_valid_rpps(rpps):
    assert is_rpps(rpps)


@pytest.mark.parametrize("value", ["10107582544", "9970024566", "997002456670", "9970024566A",
                                   ""])
def test_invalid_rpps(value):
    assert not is_rpps(value)


def test_luhn_rejects_non_digits():
    assert not luhn_valid("12a4")
    assert luhn_valid("0")


def test_id_nat_is_type_prefix_plus_identifier():
    assert make_id_nat("8", "99700245667") == "899700245667"
    assert make_id_nat("0", "012800736") == "0012800736"
    assert split_id_nat("899700245667") == ("8", "99700245667")


def test_id_nat_of_an_invalid_rpps_is_refused():
    with pytest.raises(IdentifierError, match="check digit"):
        make_id_nat("8", "10107582544")


def test_sample_line_whose_id_nat_does_not_match_its_identifier():
    with pytest.raises(IdentifierError) as error:
        check_id_nat("8", "10107582544", "810107592544")
    assert str(error.value) == ("idNat 810107592544 does not match identifier type 8 "
                                "+ identifier 10107582544")


def test_consistent_lines_pass():
    check_id_nat("8", "10107592585", "810107592585")
    check_id_nat("0", "012800728", "0012800728")


@pytest.mark.parametrize("id_type, identifier, message", [
    ("8", "1010759258", "not 11 digits"),
    ("0", "01280072", "not 9 characters"),
    ("7", "123", "unknown identifier type"),
])
def test_malformed_identifiers(id_type, identifier, message):
    with pytest.raises(IdentifierError, match=message):
        check_id_nat(id_type, identifier, id_type + identifier)


def test_id_nat_fits_the_database_column():
    identifier = "690000000/" + "1" * 29
    check_id_nat("3", identifier, "3" + identifier)
    with pytest.raises(IdentifierError, match="longer than 40"):
        check_id_nat("3", identifier + "1", "3" + identifier + "1")
