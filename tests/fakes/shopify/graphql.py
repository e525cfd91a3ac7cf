"""Just enough GraphQL for the fake shop: parse one query into fields, arguments, selections.

Handles what Admin API clients send: an optional `query Name($v: Type = default)` header,
fields with aliases and arguments (variables, strings, numbers, enums, booleans, null, lists,
input objects), and nested selection sets. No fragments or directives: the fake answers
those with an error.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<var>\$\w+)'
    r"|(?P<name>[_A-Za-z]\w*)|(?P<punct>\.\.\.|[{}()\[\]:!=,@]))"
)


class GraphQLSyntaxError(ValueError):
    pass


@dataclass
class Field:
    name: str
    alias: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    selections: list["Field"] | None = None

    @property
    def key(self) -> str:
        return self.alias or self.name

    def child(self, name: str) -> "Field | None":
        for selection in self.selections or ():
            if selection.name == name:
                return selection
        return None


class _Parser:
    def __init__(self, text: str, variables: dict[str, Any]) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        text = re.sub(r"#[^\n]*", "", text)
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if match is None:
                raise GraphQLSyntaxError(f"unexpected character at {position}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.index = 0
        self.variables = variables

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise GraphQLSyntaxError(f"expected {value or 'a token'}, got {token}")
        self.index += 1
        return token

    def skip_commas(self) -> None:
        while (token := self.peek()) is not None and token[1] == ",":
            self.index += 1

    def document(self) -> list[Field]:
        token = self.peek()
        if token is not None and token[1] in ("query", "mutation"):
            if token[1] == "mutation":
                raise GraphQLSyntaxError("the fake shop serves no mutations")
            self.take()
            if (nxt := self.peek()) is not None and nxt[0] == "name":
                self.take()
            if (nxt := self.peek()) is not None and nxt[1] == "(":
                self.variable_definitions()
        return self.selection_set()

    def variable_definitions(self) -> None:
        self.take("(")
        while (token := self.peek()) is not None and token[1] != ")":
            name = self.take()[1][1:]
            self.take(":")
            self.type_ref()
            if (nxt := self.peek()) is not None and nxt[1] == "=":
                self.take("=")
                default = self.value()
                self.variables.setdefault(name, default)
            self.skip_commas()
        self.take(")")

    def type_ref(self) -> None:
        if (token := self.peek()) is not None and token[1] == "[":
            self.take("[")
            self.type_ref()
            self.take("]")
        else:
            self.take()
        if (token := self.peek()) is not None and token[1] == "!":
            self.take("!")

    def selection_set(self) -> list[Field]:
        self.take("{")
        fields: list[Field] = []
        while (token := self.peek()) is not None and token[1] != "}":
            if token[1] in ("...", "@"):
                raise GraphQLSyntaxError("fragments and directives are not supported")
            fields.append(self.field())
            self.skip_commas()
        self.take("}")
        return fields

    def field(self) -> Field:
        name = self.take()[1]
        alias = None
        if (token := self.peek()) is not None and token[1] == ":":
            self.take(":")
            alias, name = name, self.take()[1]
        result = Field(name=name, alias=alias)
        if (token := self.peek()) is not None and token[1] == "(":
            self.take("(")
            while (token := self.peek()) is not None and token[1] != ")":
                arg = self.take()[1]
                self.take(":")
                result.args[arg] = self.value()
                self.skip_commas()
            self.take(")")
        if (token := self.peek()) is not None and token[1] == "{":
            result.selections = self.selection_set()
        return result

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "var":
            return self.variables.get(text[1:])
        if kind == "str":
            return json.loads(text)
        if kind == "num":
            return float(text) if "." in text else int(text)
        if text == "[":
            items = []
            while (token := self.peek()) is not None and token[1] != "]":
                items.append(self.value())
                self.skip_commas()
            self.take("]")
            return items
        if text == "{":
            fields = {}
            while (token := self.peek()) is not None and token[1] != "}":
                name = self.take()[1]
                self.take(":")
                fields[name] = self.value()
                self.skip_commas()
            self.take("}")
            return fields
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(text, text)
        raise GraphQLSyntaxError(f"unexpected {text!r}")


def parse(document: str, variables: dict[str, Any] | None) -> list[Field]:
    """The root fields of a query document, arguments resolved against `variables`."""
    parser = _Parser(document, dict(variables or {}))
    fields = parser.document()
    if parser.peek() is not None:
        raise GraphQLSyntaxError("only one operation per document")
    return fields
