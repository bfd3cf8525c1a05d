from btsbot_stream.cli import main

main()
