"""How short the paper notebooks are (issue 14): code lines outside the parameters cell, the longest code cell, and the
share of code lines that call medrepro (a line that names something imported from medrepro, or `medrepro.` itself).

    .venv/bin/python benchmarks/story_metrics.py [NOTEBOOK ...]     # default: nbs/papers/*.ipynb
"""
import ast, re, sys
from pathlib import Path
import nbformat

ROOT = Path(__file__).resolve().parents[1]


def code_lines(src:str)->list:
    "Lines of a code cell that are code: not blank, not comments, not `#|` directives."
    return [l for l in src.splitlines() if l.strip() and not l.strip().startswith('#')]


def medrepro_names(cells)->set:
    "Names the notebook imports from medrepro (in any cell)."
    names = set()
    for c in cells:
        try: tree = ast.parse(c.source)
        except SyntaxError: continue
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and (n.module or '').startswith('medrepro'): names |= {a.asname or a.name for a in n.names}
    return names


def story_metrics(nb:Path)->dict:
    "Code lines outside the parameters cell, longest code cell, share of code lines calling medrepro, for notebook `nb`."
    cells = [c for c in nbformat.read(nb, as_version=4).cells if c.cell_type == 'code']
    body = [c for c in cells if 'parameters' not in c.metadata.get('tags', [])]
    names = medrepro_names(cells)
    pat = re.compile(r'\bmedrepro\.|\b(' + '|'.join(map(re.escape, sorted(names))) + r')\b') if names else re.compile(r'\bmedrepro\.')
    lines = [l for c in body for l in code_lines(c.source) if not re.match(r'\s*(from|import)\s', l)]
    return dict(notebook=nb.stem, code_lines=len(lines), longest_cell=max((len(code_lines(c.source)) for c in body), default=0),
                medrepro_share=round(sum(bool(pat.search(l)) for l in lines) / max(len(lines), 1), 2))


if __name__ == '__main__':
    import pandas as pd
    nbs = [Path(p) for p in sys.argv[1:]] or sorted((ROOT/'nbs'/'papers').glob('*.ipynb'))
    print(pd.DataFrame([story_metrics(p) for p in nbs]).to_string(index=False))
