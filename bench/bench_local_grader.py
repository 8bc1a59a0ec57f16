"""Speed of the local grader on 2 cores, embeddings included, against bare sentence-transformers.

    python bench/bench_local_grader.py [--n 2000] [--threads 2] [--repeat 3] [--max-chars 200]

Texts: Do-Not-Answer responses and their prompts (../shared/data), or the seed set when the data
are absent. Measured, each the best of `--repeat` runs:

- `sentence-transformers`: `SentenceTransformer(...).encode(responses, batch_size=32)`, nothing else;
- `ONNX int8 encode`: the local grader's embedder alone on the same responses;
- `local grader, cold`: `LocalGrader.grade(samples)` with empty embedding caches (every response
  embedded, with its opening, then the head, the nearest training example and the verdicts);
- `local grader + policy, cold`: the same with the example policy, which adds the request
  embedding for category kNN;
- `local grader, warm`: grading the same samples again (embeddings from the cache).

The fitted head is reused; training time is reported apart. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--max-chars",
        type=int,
        default=None,
        help="clip each response to its first N characters (at a word boundary): 200 gives about "
        "40 word pieces, the length of the reference figures for all-MiniLM-L6-v2 on this machine",
    )
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import torch

    torch.set_num_threads(args.threads)

    from policylab.chat import user
    from policylab.graders.base import Sample
    from policylab.graders.embeddings import Embedder, model_dir
    from policylab.graders.local import LocalGrader
    from policylab.graders.training import seed_rows
    from policylab.policy.loader import load_policy
    from realdata import REPO, load_do_not_answer, shared_data_dir

    if (shared_data_dir() / "do-not-answer").is_dir():
        frame = load_do_not_answer().frame.sample(frac=1.0, random_state=0).head(args.n)
        requests, responses = frame["question"].tolist(), frame["response"].tolist()
        source = "Do-Not-Answer responses"
    else:
        rows = (seed_rows() * (args.n // 500 + 1))[: args.n]
        requests, responses = [r.request for r in rows], [r.response for r in rows]
        source = "seed responses (repeated)"
    if args.max_chars:
        responses = [_clip(r, args.max_chars) for r in responses]
        source += f", clipped to {args.max_chars} characters"
    samples = [
        Sample(id=str(i), messages=[user(q or "?")], response=r)
        for i, (q, r) in enumerate(zip(requests, responses, strict=True))
    ]
    n = len(samples)
    load_start = os.getloadavg()[0]
    chars = sum(len(r) for r in responses) / n

    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dir()), device="cpu")
    st.encode(responses[:64], batch_size=32)
    st_best = min(_timed(lambda: st.encode(responses, batch_size=32)) for _ in range(args.repeat))

    int8 = Embedder(threads=args.threads)
    int8.encode_uncached(responses[:64])
    int8_best = min(_timed(lambda: int8.encode_uncached(responses)) for _ in range(args.repeat))

    policy = load_policy(REPO / "examples" / "policies" / "acme" / "policy.yaml").policy
    t0 = time.perf_counter()
    plain = LocalGrader().fit()
    with_policy = LocalGrader(policy).fit()
    train = time.perf_counter() - t0

    def cold(grader: LocalGrader) -> float:
        # No disk cache here: emptying the memory cache makes every embedding a fresh computation.
        grader.embedder.clear_memory()
        return _timed(lambda: grader.grade(samples))

    cold_plain = min(cold(plain) for _ in range(args.repeat))
    cold_policy = min(cold(with_policy) for _ in range(args.repeat))
    warm = min(_timed(lambda: plain.grade(samples)) for _ in range(args.repeat))

    rate = {
        "sentence-transformers encode (responses only)": n / st_best,
        "ONNX int8 encode, our embedder (responses only)": n / int8_best,
        "local grader, cold cache": n / cold_plain,
        "local grader + policy (category kNN), cold cache": n / cold_policy,
        "local grader, warm cache": n / warm,
    }
    cpu = platform.processor() or platform.machine()
    print(f"{n} {source}, mean {chars:.0f} characters; {args.threads} threads; {cpu}")
    print(
        f"load average (1 min, other work on the machine included): {load_start:.2f} at the "
        f"start, {os.getloadavg()[0]:.2f} at the end; training both graders: {train:.1f} s\n"
    )
    print("| what | responses/s | vs sentence-transformers |\n|---|---|---|")
    base = rate["sentence-transformers encode (responses only)"]
    for name, value in rate.items():
        print(f"| {name} | {value:,.0f} | {value / base:.2f}× |")


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut[: cut.rfind(" ")] if " " in cut else cut


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
