"""orbitmq.protocol"""
