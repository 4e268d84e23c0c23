"""TypeScript → JavaScript by blanking the type syntax, for a node without `--experimental-strip-types`.

It does what node's own type stripping does (and no more): types, interfaces, `import type`, type
annotations and arguments, `as` casts and `!` are replaced by spaces so every line and column stays
where it was; runtime TypeScript (enums, namespaces, parameter properties) is refused, as node refuses it.
The parse is tree-sitter's TypeScript grammar, so nothing here guesses at the syntax.
"""

from __future__ import annotations

import tree_sitter_typescript
from tree_sitter import Language, Node, Parser

BLANK_WHOLE = frozenset({"type_annotation", "type_arguments", "type_parameters", "type_alias_declaration",
                         "interface_declaration"})  # fmt: skip
BLANK_TAIL = frozenset({"as_expression", "satisfies_expression"})  # keep the expression, drop ` as T`
REFUSED = frozenset({"enum_declaration", "internal_module", "module", "ambient_declaration",
                     "accessibility_modifier", "abstract_class_declaration"})  # fmt: skip


class UnsupportedTypeScript(ValueError):
    """The source uses TypeScript that has runtime meaning, or does not parse."""


def strip_types(source: str) -> str:
    raw = source.encode()
    tree = Parser(Language(tree_sitter_typescript.language_typescript())).parse(raw)
    if tree.root_node.has_error:
        raise UnsupportedTypeScript("the TypeScript does not parse")
    out = bytearray(raw)
    for start, end in _type_spans(tree.root_node):
        out[start:end] = bytes(b if b == ord("\n") else ord(" ") for b in out[start:end])
    return out.decode()


def _type_spans(node: Node) -> list[tuple[int, int]]:
    if node.type in REFUSED:
        raise UnsupportedTypeScript(f"{node.type} at line {node.start_point[0] + 1} has runtime meaning")
    if node.type in BLANK_WHOLE or _is_type_import(node) or _is_type_export(node):
        return [(node.start_byte, node.end_byte)]
    inner = [span for child in node.children for span in _type_spans(child)]
    if node.type in BLANK_TAIL:
        return [*_type_spans(node.children[0]), (node.children[0].end_byte, node.end_byte)]
    if node.type == "non_null_expression":
        return [*inner, (node.end_byte - 1, node.end_byte)]
    return inner


def _is_type_import(node: Node) -> bool:
    return node.type == "import_statement" and node.child_count > 1 and node.children[1].type == "type"


def _is_type_export(node: Node) -> bool:
    return node.type == "export_statement" and any(c.type in BLANK_WHOLE for c in node.children)
