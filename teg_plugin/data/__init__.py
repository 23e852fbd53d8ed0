"""teg_plugin.data"""
