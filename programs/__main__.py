from programs.cli import main

raise SystemExit(main())
