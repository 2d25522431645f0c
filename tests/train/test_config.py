"""Committed training recipes load: every key is known and every value is in range."""

from __future__ import annotations

import pytest

from wmhkit.errors import OptionError
from wmhkit.train.config import CONFIG_DIR, load_config
from wmhkit.train.recipe import CASE_SPACES, PHANTOM_DEFAULTS
from wmhkit.train.sampling import AUGMENT_DEFAULTS


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_committed_config_loads(path):
    config = load_config(path.stem)
    assert config["name"] == path.stem
    assert config["data"]["space"] in (None, *CASE_SPACES)  # None: the starting model's
    # The free-form dicts are checked against the defaults they override.
    assert set(config["data"].get("phantom_options", {})) <= set(PHANTOM_DEFAULTS)
    assert set(config.get("augment", {})) <= set(AUGMENT_DEFAULTS)
    assert config["training"]["steps"] > 0


def test_unknown_keys_are_refused():
    with pytest.raises(OptionError, match="spcae"):
        load_config(None, {"data": {"spcae": "subject"}})
