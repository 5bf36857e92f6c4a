"""orbitmq.client"""
