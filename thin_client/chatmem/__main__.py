from chatmem.cli.app import main

main()
