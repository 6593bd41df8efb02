"""Command line: ``python -m nn_interpretability.reports`` runs the notebooks and builds the report folder."""
from __future__ import annotations

import argparse
import sys

from .runner import parse_parameter, run_reports


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nn_interpretability.reports",
        description="Execute the method notebooks with papermill, export them to HTML and write the "
        "figure index. Exits with status 1 if a notebook failed or did not write a figure it claims.",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        action="extend",
        metavar="NAME",
        help="notebooks to run: slug (03_saliency_maps), number (03) or bare slug (saliency_maps)",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="papermill parameter for every notebook; VALUE is read as a Python literal when it is one",
    )
    parser.add_argument("--notebooks", metavar="DIR", help="notebooks folder (default: <repo>/notebooks)")
    parser.add_argument(
        "--output", metavar="DIR", help="report folder (default: $NNI_REPORTS_DIR or <repo>/reports)"
    )
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="also write each successfully executed notebook back over its source in notebooks/",
    )
    parser.add_argument("--kernel", default="python3", metavar="NAME", help="Jupyter kernel (default: python3)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the report CLI and return its exit status (0 success, 1 failures, 2 usage error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    parameters = {key: parse_parameter(value) for key, value in args.parameter}
    try:
        results = run_reports(
            only=args.only,
            parameters=parameters,
            notebooks_dir=args.notebooks,
            output_dir=args.output,
            kernel_name=args.kernel,
            in_place=args.in_place,
        )
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))

    for result in results:
        print(f"{result.status:<10} {result.seconds:7.1f} s  {result.name}")
    if results:
        print(f"index: {results[0].executed.parent.parent / 'index.html'}")
    else:
        print("no notebooks to run; index written")
    failures = [r for r in results if not r.ok]
    if not failures:
        return 0
    lines = [f"{len(failures)} of {len(results)} notebooks failed or did not write their figures:"]
    for result in failures:
        if result.error:
            lines.append(f"  {result.name}: {result.error}")
        if result.missing_figures:
            lines.append(f"  {result.name}: figures not written: {', '.join(result.missing_figures)}")
    print("\n".join(lines), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
