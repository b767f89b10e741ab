"""`dgslrm_node` entry point: init, build the node, spin until SIGINT/SIGTERM, shut down cleanly.

A refused parameter (or any other DgslrmError at start-up, e.g. an unreadable checkpoint) ends the
process with exit status 2 and a one-line message naming it, so a launch file or systemd unit shows why
the node did not come up.
"""
from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    # Spinning OpenMP workers steal the callback threads' cores on small robots' CPUs; must be set
    # before torch loads (libgomp reads it once).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from dgslrm_ros.core.threads import default_worker_threads

    default_worker_threads(os.environ)  # all cores but one for torch, unless OMP_NUM_THREADS says otherwise
    from dgslrm_ros.stream.memory import start_tracemalloc_if_asked

    start_tracemalloc_if_asked()  # DGSLRM_TRACEMALLOC=1: diagnostics then report the traced Python heap
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from dgslrm_ros.core.errors import DgslrmError

    args = sys.argv if argv is None else argv
    rclpy.init(args=args)  # installs SIGINT and SIGTERM handlers that shut the context down
    try:
        from dgslrm_ros.ros.node import DgslrmNode

        node = DgslrmNode()
    except DgslrmError as error:
        print(f"dgslrm_node: refused at start-up: {error}", file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        return 2
    except Exception as error:  # a bug, not a value the user gave: say what, not a bare traceback
        print(f"dgslrm_node: could not start: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        rclpy.try_shutdown()
        return 1
    try:
        executor = SingleThreadedExecutor()  # callbacks only enqueue; the model runs on the node's worker
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()  # joins the worker, waiting at most SHUTDOWN_JOIN_S for a window in flight
        rclpy.try_shutdown()
    if node.worker_busy:
        # Finalising the interpreter under a thread that is inside torch aborts the process
        # ("terminate called without an active exception"); nothing is left to save, so leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
