from warehouse.text.cli import main

raise SystemExit(main())
