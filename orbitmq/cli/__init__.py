"""orbitmq.cli"""
