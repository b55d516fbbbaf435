"""`kafkarnn compare`: runs side by side — their validation curves on one chart, a table of what
they cost and reached, the settings that differ, and a sample from each run's best model."""

from __future__ import annotations

import json
import math

from kafkarnn.errors import KafkarnnError

CHART_HEIGHT = 16


def cmd_compare(args) -> int:
    from kafkarnn.inspect.compare import compare
    from kafkarnn.runs.folder import resolve_data_dir
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise KafkarnnError(f"--temperature must be 0 or more, not {args.temperature}")
    data_dir = resolve_data_dir(args.data_dir)
    c = compare(data_dir, args.runs, args.x, prompt=args.prompt, length=args.length,
                seed=args.seed, temperature=args.temperature, samples=not args.no_samples)
    if args.json:
        print(json.dumps(c.to_json(train=args.train), indent=2))
        return 0
    from rich.console import Console

    from kafkarnn.pictures import comparison as view
    console = Console(highlight=False)
    width = min(console.width, 160)
    console.print(view.legend(c, args.train))
    console.print(view.chart(c, width, CHART_HEIGHT, train=args.train))
    console.print(view.table(c))
    console.print(view.settings_table(c))
    if c.samples:
        console.print(view.samples_table(c), width=width)
    return 0
