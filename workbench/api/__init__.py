"""The Docker Engine API server (``nutshell system service``): HTTP -> core.Engine.

    http.py        HTTP/1.1 on one connection: requests, JSON, chunked streams, hijacks
    router.py      routes, API version negotiation, Docker's error shapes
    server.py      the UNIX socket (or systemd's), one thread per client, idle exit
    routes.py      every area's endpoints, declared on their handlers (@routes.route):
    system.py      _ping, version, info, system/df, auth, events
    containers.py  containers: create ... attach, wait, logs, export
    createbody.py  the create body -> core RunOptions
    shapes.py      list entries in Docker's shapes

See docs/api.md.
"""
