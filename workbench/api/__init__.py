"""The Docker Engine API server (``nutshell system service``): HTTP -> core.Engine.

    http.py        HTTP/1.1 on one connection: requests, JSON, chunked streams, hijacks
    router.py      routes, API version negotiation, Docker's error shapes
    server.py      the UNIX socket (or systemd's), one thread per client, idle exit
    routes.py      every area's endpoints, declared on their handlers (@routes.route):
    system.py      _ping, version, info, system/df, auth, events
    containers.py  containers: create ... attach, wait, logs, top, changes, export
    execs.py       exec create, start (hijacked), resize, inspect
    archive.py     docker cp: GET/HEAD/PUT /containers/{id}/archive
    stats.py       /containers/{id}/stats in Docker's shape
    images.py      images: list ... pull, push, save, load, import, commit
    build.py       /build from a tar context
    networks.py    networks: all verbs
    volumes.py     volumes: all verbs
    createbody.py  the create body -> core RunOptions
    shapes.py      list entries in Docker's shapes
    requestlog.py  the log of changing requests the app's command log shows

See docs/api.md.
"""
