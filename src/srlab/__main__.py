from srlab.cli import main

raise SystemExit(main())
