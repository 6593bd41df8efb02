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
    parser.add_argument(
        "--no-execute",
        dest="execute",
        action="store_false",
        help="export the committed notebooks with their outputs instead of executing them (seconds, not minutes)",
    )
    return parser


def closing_table(results) -> str:
    """The table printed after a build: one line per notebook with its status, time and what needs a look."""
    width = max((len(r.name) for r in results), default=0)
    lines = [f"{'notebook':<{width}}  {'status':<10}  {'time':>8}  details"]
    for r in results:
        time = f"{r.seconds:.1f} s" if r.seconds else "-"
        lines.append(f"{r.name:<{width}}  {r.status:<10}  {time:>8}  {'; '.join(r.details)}")
    lines.append(f"{'total':<{width}}  {sum(r.ok for r in results)} ok / {len(results):<3}  "
                 f"{sum(r.seconds for r in results):6.1f} s")
    return "\n".join(lines)


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
            execute=args.execute,
        )
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))

    if results:
        print(closing_table(results))
        print(f"index: {results[0].executed.parent.parent / 'index.html'}")
    else:
        print("no notebooks to run; index written")
    failures = [r for r in results if not r.ok]
    if not failures:
        return 0
    lines = [f"{len(failures)} of {len(results)} notebooks failed or did not write their figures:"]
    lines += [f"  {r.name}: {line}" for r in failures for line in r.details]
    print("\n".join(lines), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
