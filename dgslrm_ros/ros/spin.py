"""A node spun on a daemon thread while the caller does the command's work (`dgslrm soak`, `view --live`);
rclpy's signal handlers stay off, so Ctrl-C reaches the caller, which stops the node in its own order."""
from __future__ import annotations

import threading
from typing import Any, Callable


def spin_in_background(make_node: Callable[[], Any], name: str = "rclpy-executor") -> tuple[Any, Callable[[], None]]:
    """rclpy.init, the node `make_node` builds on a SingleThreadedExecutor in a daemon thread -> (node, stop);
    `stop` shuts the executor down, destroys the node, shuts rclpy down and joins the thread."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = make_node()
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def spin() -> None:
        try:
            executor.spin()
        except ExternalShutdownException:
            pass

    thread = threading.Thread(target=spin, name=name, daemon=True)
    thread.start()

    def stop() -> None:
        executor.shutdown(timeout_sec=5.0)
        node.destroy_node()
        rclpy.try_shutdown()
        thread.join(5.0)

    return node, stop
