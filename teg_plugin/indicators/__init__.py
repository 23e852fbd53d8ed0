"""teg_plugin.indicators"""
