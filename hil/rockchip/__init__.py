"""Rockchip RK3576 / RKNPU / RKLLM knowledge as pure code: log parsers, version rules, board facts
and the configuration checks run before any inference. Nothing here touches a board."""
