import re
from pathlib import Path

from api.schema import export_sdl

ROOT = Path(__file__).resolve().parents[2]


def test_schema_graphql_is_the_exported_schema() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")

    assert committed == export_sdl(), (
        "schema.graphql is stale: regenerate it with `python -m api.schema > schema.graphql`"
    )


def test_every_mutation_answers_a_payload_or_a_user_error() -> None:
    sdl = export_sdl()

    for verb_noun in ("UpdateShop", "CreateApiKey", "RevokeApiKey"):
        assert f"union {verb_noun}Result = {verb_noun}Payload | UserError" in sdl


def test_user_error_codes_mirror_the_domain() -> None:
    from domain.errors import ErrorCode

    sdl = export_sdl()
    block = sdl.split("enum UserErrorCode {", 1)[1].split("}", 1)[0]

    assert block.split() == [code.name for code in ErrorCode]


def test_no_field_exposes_credentials_or_key_hashes() -> None:
    # What can be read: output types. Inputs carry credentials in, and mutations are verbs.
    blocks = re.findall(r"^(type|interface) (\w+)[^{]*\{(.*?)^\}", export_sdl(), re.M | re.S)
    readable = "\n".join(body for _, name, body in blocks if name != "Mutation")
    fields = re.findall(r"^\s+(\w+)[(:]", readable, re.MULTILINE)

    assert fields
    assert [f for f in fields if re.search("credential|hash|secret|cursors", f, re.I)] == []
