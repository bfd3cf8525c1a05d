from btsbot_stream.cli import main

if __name__ == "__main__":  # worker processes import this module again: not a second CLI
    main()
