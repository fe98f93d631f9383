"""gunicorn --preload: the app is imported once in the master, then the workers fork. A
pushwire client's engine threads do not survive a fork, so each worker creates its own in
post_fork, and closes it when it exits.

    gunicorn -c gunicorn.conf.py flask_app:app
"""

preload_app = True
workers = 2
threads = 4  # request threads of a worker share its one client
bind = "127.0.0.1:8000"


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    import flask_app  # already imported by --preload: the same module

    flask_app.start_client()


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    import flask_app

    flask_app.stop_client()
