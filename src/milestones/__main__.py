from milestones.cli import main

raise SystemExit(main())
