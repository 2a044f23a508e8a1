"""`python -m vit.kernels`: build vit's fused CPU kernels now (again, after a failed build),
load them and print the library's path; exit 1 where they cannot be built."""

from .build import main

if __name__ == "__main__":
    raise SystemExit(main())
