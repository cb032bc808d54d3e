"""``python -m dastrax.bench``: the benchmarks (or one step of them, in a child process)."""

from dastrax.bench.steps import main

if __name__ == "__main__":
    main()
