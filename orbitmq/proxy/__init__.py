"""orbitmq.proxy"""
