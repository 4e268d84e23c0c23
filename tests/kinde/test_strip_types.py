"""The type blanker the workflow's node test falls back on: types go, code and positions stay."""

from __future__ import annotations

import pytest

from tests.kinde.strip_types import UnsupportedTypeScript, strip_types

SOURCE = """import type { A } from "x";
import { b } from "x";
type D = { a: string };
export interface E { x: number }
export const s: A = { id: "a" };
export default async function f<T>(e: A): Promise<void> {
  const v = (e as unknown as D);
  g<string>(v!, new Map<string, T>());
}
"""


def test_types_are_blanked_and_code_kept_in_place() -> None:
    out = strip_types(SOURCE)
    code = [" ".join(line.split()) for line in out.splitlines()]
    assert code == [
        "",
        'import { b } from "x";',
        "",
        "",
        'export const s = { id: "a" };',
        "export default async function f (e ) {",
        "const v = (e );",
        "g (v , new Map ());",
        "}",
    ]
    assert [len(line) for line in out.splitlines()] == [len(line) for line in SOURCE.splitlines()]


@pytest.mark.parametrize("source", ["enum Color { Red }", "namespace N { export const a = 1; }", "const = ;"])
def test_typescript_with_runtime_meaning_or_bad_syntax_is_refused(source: str) -> None:
    with pytest.raises(UnsupportedTypeScript):
        strip_types(source)
