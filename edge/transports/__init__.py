"""Transports only move bytes / notifications (pyserial, bleak); sources give them meaning."""
