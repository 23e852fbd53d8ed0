"""teg_plugin.benchmarks"""
